import { Command, CommanderError } from 'commander';
import { runDaemon } from '../daemon/daemon.ts';
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE } from '../platform/exit-codes.ts';
import { AGENT_VERSION } from '../platform/version.ts';
import { checkUpdateCommand } from './commands/check-update.ts';
import { configCommand } from './commands/config.ts';
import { enginesAddCommand, enginesListCommand } from './commands/engines.ts';
import { installServiceCommand, uninstallServiceCommand } from './commands/service.ts';
import { setupCommand } from './commands/setup.ts';
import { uiCommand } from './commands/ui.ts';
import { logsCommand, type LogsOptions } from './commands/logs.ts';
import { pauseCommand } from './commands/pause.ts';
import { registerCommand } from './commands/register.ts';
import { resumeCommand } from './commands/resume.ts';
import { setThresholdCommand } from './commands/set-threshold.ts';
import { statusCommand } from './commands/status.ts';
import { resolveConfigPath } from '../config/invocation.ts';
import { processIo, type CliIo } from './io.ts';

/** Shown after `--help`; docs/local-api.md lists the same. */
export const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  something went wrong (the message says what to do)
  2  usage error: unknown command or option, or a bad argument
  3  another daemon already runs for this config dir (run)
  4  no daemon is running for this config dir (pause, resume, logs --follow)
  5  run: a newer process connected with this worker id (studio close 4003); services and PM2 do not restart on it
`;

/** Run the CLI with `argv` (as in process.argv, node and script first); resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode = EXIT_OK;
  const program = new Command()
    .name('studio-worker')
    .description('Lend this machine to a studio: registers, takes jobs over a WebSocket, runs them on a local engine.')
    .option('--config <file>', "config.toml to use (default: in a checkout, npm start's local worker when it exists; else the per-user config dir)")
    .version(`studio-worker ${AGENT_VERSION}`, '-V, --version', 'print the version')
    .showHelpAfterError('(run `studio-worker --help` for usage)')
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) })
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();

  const resolved = (command: Command) => resolveConfigPath((command.optsWithGlobals() as { config?: string }).config);
  const configPath = (command: Command): string => resolved(command).path;

  program
    .command('run')
    .description('run the daemon (registration, studio session, jobs) until SIGTERM or SIGINT')
    .action(async (_options, command: Command) => {
      exitCode = await runDaemon({ configPath: configPath(command), printError: (message) => io.err(message) });
    });

  program
    .command('register')
    .description('set the studio URL or label, or reset the registration (no network; the daemon registers)')
    .option('--api-base-url <url>', 'the studio, e.g. https://studio.example/')
    .option('--label <text>', 'a name the studio operator sees next to this machine')
    .option('--pool <name>', 'the pool to register into on a sharded (Cloudflare) studio, e.g. gpu; "" for none')
    .option('--reset', 'forget the worker id, token, install id and pending request, so the next start registers afresh')
    .action(async (options: { apiBaseUrl?: string; label?: string; pool?: string; reset?: boolean }, command: Command) => {
      exitCode = await registerCommand(configPath(command), options, io);
    });

  program
    .command('status')
    .description('show the registration, the session and the engines')
    .action(async (_options, command: Command) => {
      const { path, source } = resolved(command);
      exitCode = await statusCommand(path, io, source);
    });

  program
    .command('pause')
    .description('stop taking studio jobs until resume or a restart (needs the running daemon; a running job finishes)')
    .action(async (_options, command: Command) => {
      exitCode = await pauseCommand(configPath(command), io);
    });

  program
    .command('resume')
    .description('take studio jobs again after pause (needs the running daemon)')
    .action(async (_options, command: Command) => {
      exitCode = await resumeCommand(configPath(command), io);
    });

  program
    .command('logs')
    .description("show the daemon's recent log; without a running daemon, the tail of <config dir>/logs/daemon.log")
    .option('-f, --follow', 'keep printing new lines (every second) until Ctrl-C')
    .option('-n, --lines <n>', 'how many of the newest lines to show first', '50')
    .option('--level <level>', 'the least severe level to show: debug, info, warn, error (the running daemon keeps info and up)', 'info')
    .action(async (options: LogsOptions, command: Command) => {
      const interrupted = new AbortController();
      const onSigint = () => interrupted.abort();
      if (options.follow) process.once('SIGINT', onSigint);
      try {
        exitCode = await logsCommand(configPath(command), options, io, interrupted.signal);
      } finally {
        process.off('SIGINT', onSigint);
      }
    });

  program
    .command('set-threshold')
    .description('set vram_threshold_gb: the biggest job (by VRAM estimate, in GB) the studio may offer this worker')
    .argument('<gb>', 'a number of GB ≥ 0')
    .action(async (gb: string, _options, command: Command) => {
      exitCode = await setThresholdCommand(configPath(command), gb, io);
    });

  program
    .command('config')
    .description('print the resolved config (credentials masked)')
    .action(async (_options, command: Command) => {
      exitCode = await configCommand(configPath(command), io);
    });

  program
    .command('ui')
    .description('start the daemon if none runs and open the web UI')
    .option('--no-open', 'print the URL instead of opening a browser')
    .option('--tray', 'stay running with a tray icon (needs the optional systray2 package)')
    .action(async (options: { open: boolean; tray?: boolean }, command: Command) => {
      exitCode = await uiCommand(configPath(command), options, io);
    });

  program
    .command('setup')
    .description('start at login (autostart entry), print first-run guidance, then open the UI')
    .option('--no-start', 'do not start the daemon or the UI now')
    .option('--no-open', 'print the UI URL instead of opening a browser')
    .option('--tray', 'the login entry also shows the tray icon')
    .option('--remove', 'remove the login entry')
    .action(async (options: { start: boolean; open: boolean; tray?: boolean; remove?: boolean }, command: Command) => {
      exitCode = await setupCommand(configPath(command), options, io);
    });

  program
    .command('install-service')
    .description('run the daemon as a supervised service (systemd --user, launchd, Task Scheduler)')
    .action(async (_options, command: Command) => {
      exitCode = await installServiceCommand(configPath(command), io);
    });

  program
    .command('uninstall-service')
    .description('stop, disable and remove the service')
    .action(async (_options, command: Command) => {
      exitCode = await uninstallServiceCommand(configPath(command), io);
    });

  const engines = program.command('engines').description('engine runtimes installed on demand (onnx: onnxruntime-node, ~290 MB)');
  engines
    .command('add')
    .description("install an engine's runtime from the npm registry into the data dir (pinned, verified) and switch the engine on")
    .argument('<engine>', 'the engine, e.g. onnx')
    .action(async (engine: string, _options, command: Command) => {
      exitCode = await enginesAddCommand(configPath(command), engine, io);
    });
  engines
    .command('list')
    .description('the engines whose runtime is installed on demand, and whether it is installed')
    .action(() => {
      exitCode = enginesListCommand(io);
    });

  program
    .command('check-update')
    .description('look for a newer version on the release feed (never installs; the daemon installs between jobs)')
    .action(async (_options, command: Command) => {
      exitCode = await checkUpdateCommand(configPath(command), io);
    });

  program
    .command('version')
    .description('print the version')
    .action(() => {
      io.out(`studio-worker ${AGENT_VERSION}`);
    });

  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT_OK;
      // Commander already printed what was wrong.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    io.err(`studio-worker: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_ERROR;
  }
  return exitCode;
}
