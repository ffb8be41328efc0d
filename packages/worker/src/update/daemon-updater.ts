import type { Logger } from '@studio-worker/log';
import type { Release } from '../platform/job-gate.ts';
import { BadVersions } from './bad-versions.ts';
import { FeedClient } from './feed.ts';
import { VersionsInstaller } from './installer.ts';
import { SINGLE_FILE } from '../package-layout.ts';
import { defaultDataDir, updatePaths } from './paths.ts';
import { detachedLauncher } from './successor.ts';
import { detectSupervisor, type Supervisor } from './supervision.ts';
import { AutoUpdater, type AutoUpdateSettings } from './updater.ts';

/**
 * Milliseconds after the daemon's start for one early update check (by default the first check comes
 * one `auto_update_interval_secs` after the start). For an operator who wants a fresh start to update
 * at once, and for the release tests.
 */
export const FIRST_CHECK_ENV = 'STUDIO_WORKER_UPDATE_FIRST_CHECK_MS';

export interface DaemonUpdaterOptions {
  currentVersion: string;
  /** `studio-worker/<version>`. */
  userAgent: string;
  /** Read at every tick: `() => autoUpdateSettings(store.current)`. */
  settings: () => AutoUpdateSettings;
  gate: { readonly busy: boolean; tryAcquire(): Release | null };
  log: Logger;
  /** The daemon's config dir (where the successor writes started.json). */
  configDir: string;
  /** Graceful daemon stop that releases the daemon lock: `() => daemon.shutdown('update')`. */
  stopCurrent: () => Promise<void>;
  /** Default: `defaultDataDir()`. */
  dataDir?: string;
  /** Default: process.env (the supervisor marker, the first-check delay, a rollback's marker). */
  env?: NodeJS.ProcessEnv;
  /** Default: detected from `env` (supervision.ts). */
  supervisor?: Supervisor | null;
}

/**
 * The updater with the default parts: the npm/static feed, side-by-side versions, and a handover
 * that fits how the daemon runs: under systemd or launchd, a restart through the supervisor; else
 * a detached start of the new version.
 */
export function createDaemonUpdater(options: DaemonUpdaterOptions): AutoUpdater {
  const env = options.env ?? process.env;
  const dataDir = options.dataDir ?? defaultDataDir(env);
  const paths = updatePaths(dataDir);
  const supervisor = options.supervisor === undefined ? detectSupervisor({ env }) : options.supervisor;
  const firstCheck = Number(env[FIRST_CHECK_ENV]);
  return new AutoUpdater({
    currentVersion: options.currentVersion,
    settings: options.settings,
    gate: options.gate,
    feed: new FeedClient({ http: { fetch: globalThis.fetch, userAgent: options.userAgent } }),
    installer: new VersionsInstaller({ dataDir, currentVersion: options.currentVersion, log: options.log, singleFile: SINGLE_FILE !== null }),
    badVersions: new BadVersions(paths.badVersions),
    downloadsDir: paths.downloads,
    pendingFile: paths.pending,
    handover: {
      stopCurrent: options.stopCurrent,
      launcher: detachedLauncher(),
      configDir: options.configDir,
      // A single file restarts as itself (its bootstrap follows current.json like the bin does).
      previousEntry: SINGLE_FILE ?? process.argv[1] ?? '',
      supervisor,
    },
    log: options.log,
    env,
    ...(env[FIRST_CHECK_ENV] && Number.isFinite(firstCheck) && firstCheck >= 0 ? { firstCheckMs: firstCheck } : {}),
  });
}
