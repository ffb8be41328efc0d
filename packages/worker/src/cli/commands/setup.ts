import { httpApiBase } from '@studio-worker/protocol';
import { ConfigError, readConfig, type WorkerConfig } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import { describeRegistration } from '../../registration/index.ts';
import { autostartInstalled, installAutostart, removeAutostart } from '../../ops/autostart.ts';
import { lockOwner } from '../../ops/daemon-launch.ts';
import { OpsError } from '../../ops/errors.ts';
import { currentHost } from '../../ops/host.ts';
import { localApiInfoPath } from '../../ops/local-api-info.ts';
import { serviceInstalled, uninstallService } from '../../ops/service.ts';
import type { CliIo } from '../io.ts';
import { uiCommand, type UiDeps } from './ui.ts';

export interface SetupOptions {
  /** Run `ui` at the end (default true). */
  start?: boolean;
  /** Passed to `ui`: open the browser (default true). */
  open?: boolean;
  /** The login entry also shows the tray icon (needs systray2). */
  tray?: boolean;
  /** Remove the login entry instead of installing it. */
  remove?: boolean;
}

/**
 * `studio-worker setup [--no-start] [--no-open] [--tray] [--remove]`: install (or refresh) the login
 * entry that runs `studio-worker ui --no-open` at login, print what happens next, then run `ui`.
 * Idempotent. A supervised service, if installed, is removed first: the two are alternatives.
 */
export async function setupCommand(configPath: string, options: SetupOptions, io: CliIo, deps: UiDeps = {}): Promise<number> {
  const host = deps.host ?? currentHost();
  let config: WorkerConfig;
  try {
    ({ config } = await readConfig(configPath));
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker setup: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }

  try {
    if (options.remove) {
      const removed = await removeAutostart(host);
      io.out(removed.outcome === 'removed' ? `removed the login entry ${removed.place}` : `no login entry to remove (${removed.place})`);
      const pid = await lockOwner(configPath);
      io.out(
        pid === null
          ? 'no daemon is running for this config'
          : `the daemon (pid ${pid}) keeps running until you stop it: ${host.platform === 'win32' ? `taskkill /PID ${pid}` : `kill ${pid}`} (its running job is handed back)`,
      );
      io.out(`config and data stay in ${configPath.replace(/[\\/][^\\/]+$/, '')}; delete that folder to forget this worker entirely`);
      return EXIT_OK;
    }

    if (await serviceInstalled(host, configPath)) {
      const removed = await uninstallService(host, configPath);
      io.out(`removed the studio-worker service (the login entry replaces it; use one or the other): ${removed.steps.join('; ') || 'nothing was running'}`);
    }
    const wasInstalled = await autostartInstalled(host);
    const entry = await installAutostart(host, configPath, { tray: options.tray });
    io.out(
      entry.outcome === 'unchanged'
        ? `login entry already up to date: ${entry.place}`
        : `${wasInstalled ? 'updated' : 'installed'} the login entry ${entry.place}: at login it runs \`studio-worker ui --no-open${options.tray ? ' --tray' : ''}\`, which starts the daemon`,
    );
  } catch (error) {
    if (error instanceof OpsError) {
      io.err(`studio-worker setup: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }

  const registration = config.workerId && config.authToken
    ? describeRegistration({ state: 'approved' }, config.workerId)
    : config.registrationRequestId
      ? describeRegistration({ state: 'pending', requestId: config.registrationRequestId })
      : 'not registered yet: the daemon asks the studio when it starts';
  const rows: Array<[string, string]> = [
    ['machine name', `${host.machineName} (the name the studio operator sees and approves)`],
    ['studio', `${httpApiBase(config.apiBaseUrl)} (change it: studio-worker register --api-base-url <url>)`],
    ['registration', registration],
    ['config', configPath],
    ['local API', `URL and token in ${localApiInfoPath(configPath)} while the daemon runs`],
    ['web UI', 'studio-worker ui'],
    ['status', 'studio-worker status'],
    ['uninstall', 'studio-worker setup --remove (removes the login entry)'],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 3;
  io.out('\nNext steps');
  for (const [label, value] of rows) io.out(`  ${`${label}:`.padEnd(width)}${value}`);
  io.out('');

  if (options.start === false) {
    io.out('not starting the daemon now (--no-start); it starts at the next login, or now with: studio-worker ui');
    return EXIT_OK;
  }
  return uiCommand(configPath, { open: options.open }, io, deps);
}
