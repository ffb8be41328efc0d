import { pino } from 'pino';
import { createLogRoot } from '@studio-worker/log';
import { ConfigError, readConfig } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import { openInBrowser } from '../../ops/browser.ts';
import { ensureDaemon } from '../../ops/daemon-launch.ts';
import { OpsError } from '../../ops/errors.ts';
import { currentHost, type Host } from '../../ops/host.ts';
import { localApiInfoPath, webUiUrl, type LocalApiInfo } from '../../ops/local-api-info.ts';
import { LocalApiTrayDaemon, loadSystray, TrayController, type SystrayFactory } from '../../ops/tray.ts';
import type { CliIo } from '../io.ts';

export interface UiOptions {
  /** Open the browser (default true); false prints the URL instead. */
  open?: boolean;
  /** Stay running with a tray icon (needs the optional systray2 package). */
  tray?: boolean;
}

/** Seams for tests; the defaults are the real machine. */
export interface UiDeps {
  host?: Host;
  /** Whether stdout is a terminal (the URL with its token is printed only there). */
  isTerminal?: boolean;
  readyTimeoutMs?: number;
  loadSystray?: () => Promise<SystrayFactory>;
}

/**
 * `studio-worker ui [--no-open] [--tray]`: start the daemon if none runs for this config, wait for its
 * local API, and open the web UI (or print its URL). Exit 0 once the UI is open or its URL printed;
 * 1 when the config is broken, the daemon does not start or seems stuck, or the tray cannot start.
 */
export async function uiCommand(configPath: string, options: UiOptions, io: CliIo, deps: UiDeps = {}): Promise<number> {
  const host = deps.host ?? currentHost();
  try {
    await readConfig(configPath);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker ui: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }

  let daemon;
  try {
    daemon = await ensureDaemon(host, configPath, { timeoutMs: deps.readyTimeoutMs, progress: (line) => io.out(line) });
  } catch (error) {
    if (error instanceof OpsError) {
      io.err(`studio-worker ui: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  if (!daemon.started) io.out(`the daemon is already running${daemon.pid === null ? '' : ` (pid ${daemon.pid})`}`);

  const terminal = deps.isTerminal ?? Boolean(process.stdout.isTTY);
  if (options.open !== false) {
    const opened = await openInBrowser(host, webUiUrl(daemon.info));
    if (opened.opened) io.out(`opened the web UI in your browser (${daemon.info.url}/)`);
    else {
      io.out(`could not open a browser: ${opened.reason}`);
      printUrl(io, daemon.info, configPath, terminal);
    }
  } else {
    printUrl(io, daemon.info, configPath, terminal);
  }
  const stopHint = daemon.pid === null ? '' : host.platform === 'win32' ? `; stop it: taskkill /PID ${daemon.pid}` : `; stop it: kill ${daemon.pid}`;
  io.out(`the daemon keeps running after this command; its state: studio-worker status${stopHint}`);

  if (!options.tray) return EXIT_OK;
  return runTray(host, configPath, io, deps);
}

function printUrl(io: CliIo, info: LocalApiInfo, configPath: string, terminal: boolean): void {
  if (terminal) {
    io.out(`web UI: ${webUiUrl(info)}`);
    io.out('(the link carries the local API token: keep it to yourself)');
  } else {
    // Not a terminal (a login entry, a log file): no token in the output.
    io.out(`web UI: ${info.url}/ (its token is in ${localApiInfoPath(configPath)}; \`studio-worker ui --no-open\` in a terminal prints the whole link)`);
  }
}

async function runTray(host: Host, configPath: string, io: CliIo, deps: UiDeps): Promise<number> {
  let systray;
  try {
    systray = await (deps.loadSystray ?? loadSystray)();
  } catch (error) {
    if (error instanceof OpsError) {
      io.err(`studio-worker ui: no tray icon: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  const log = createLogRoot({ app: 'studio-worker', destination: pino.destination({ fd: 2, sync: true }) }).child('tray');
  const tray = new TrayController({
    systray,
    daemon: new LocalApiTrayDaemon(configPath),
    open: (url) => openInBrowser(host, url),
    platform: host.platform,
    log,
  });
  try {
    await tray.start();
  } catch (error) {
    if (error instanceof OpsError) {
      io.err(`studio-worker ui: no tray icon: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  io.out('tray icon shown; Quit in its menu stops the daemon and the icon');
  const stop = () => tray.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await tray.closed;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return EXIT_OK;
}
