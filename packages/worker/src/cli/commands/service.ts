import { ConfigError, readConfig } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import { autostartInstalled, removeAutostart } from '../../ops/autostart.ts';
import { OpsError } from '../../ops/errors.ts';
import { currentHost, type Host } from '../../ops/host.ts';
import { installService, stopTimeoutFor, uninstallService } from '../../ops/service.ts';
import { stopRunningDaemon } from '../../ops/stop-daemon.ts';
import type { CliIo } from '../io.ts';

export interface ServiceDeps {
  host?: Host;
}

/**
 * `studio-worker install-service`: a supervised service that runs `studio-worker run` (systemd user
 * unit, launchd LaunchAgent, or a Windows scheduled task) and restarts it on failure. Removes the
 * login entry (they are alternatives) and stops a daemon running outside the service first, so the
 * service's daemon gets the lock. Exit 0 once the supervisor started it; 1 with what to do otherwise.
 */
export async function installServiceCommand(configPath: string, io: CliIo, deps: ServiceDeps = {}): Promise<number> {
  const host = deps.host ?? currentHost();
  let graceSecs: number;
  try {
    graceSecs = (await readConfig(configPath)).config.shutdownGraceSecs;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker install-service: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  const stopTimeoutSecs = stopTimeoutFor(graceSecs);
  try {
    if (await autostartInstalled(host)) {
      const removed = await removeAutostart(host);
      io.out(`removed the login entry ${removed.place} (the service replaces it; use one or the other)`);
    }
    const stopped = await stopRunningDaemon(configPath, stopTimeoutSecs * 1000);
    if (stopped !== null) io.out(`stopped the running daemon (pid ${stopped}); the service starts its own`);
    const result = await installService(host, configPath, { stopTimeoutSecs, logFilter: host.env.STUDIO_WORKER_LOG?.trim() || 'info' });
    for (const step of result.steps) io.out(step);
    io.out('the service is installed and running; it starts at every login and restarts after a failure');
    for (const line of result.next) io.out(`  ${line}`);
    io.out('  remove it: studio-worker uninstall-service');
    return EXIT_OK;
  } catch (error) {
    if (error instanceof OpsError) {
      io.err(`studio-worker install-service: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
}

/** `studio-worker uninstall-service`: stop, disable and remove the service (a no-op when there is none). */
export async function uninstallServiceCommand(configPath: string, io: CliIo, deps: ServiceDeps = {}): Promise<number> {
  const host = deps.host ?? currentHost();
  try {
    const result = await uninstallService(host, configPath);
    if (result.steps.length === 0) io.out(`no studio-worker service was installed (looked for ${result.file})`);
    for (const step of result.steps) io.out(step);
    io.out('to start the worker at login without a service: studio-worker setup');
    return EXIT_OK;
  } catch (error) {
    if (error instanceof OpsError) {
      io.err(`studio-worker uninstall-service: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
}
