import { dirname, join } from 'node:path';
import { defaultModelsRoot } from '../config/index.ts';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The per-user data dir that holds installed versions: the parent of the default models root, so
 * `$XDG_DATA_HOME/studio-worker` or `~/.local/share/studio-worker`. It is per user, not per config
 * dir: every worker of this user runs the same installed versions.
 */
export function defaultDataDir(env: Env = process.env): string {
  return dirname(defaultModelsRoot(env));
}

/** Where the updater keeps its files under the data dir (docs/operations/auto-update.md, "Layout"). */
export function updatePaths(dataDir: string) {
  const versions = join(dataDir, 'versions');
  return {
    /** One folder per installed version, `versions/<version>/`. */
    versions,
    /** The pointer the launcher follows: `{ "version": "0.2.0", ... }`. */
    current: join(versions, 'current.json'),
    /** A switch the service manager's restart still has to prove (supervised handover, see pending.ts). */
    pending: join(versions, 'pending.json'),
    /** Held while one process unpacks and installs, so two workers of this user never collide. */
    installLock: join(versions, '.install.lock'),
    /** Unpacking happens here, renamed into `versions/<version>` once complete. */
    staging: (version: string, nonce: string) => join(versions, `.staging-${version}-${nonce}`),
    /** Downloaded archives, removed once unpacked. */
    downloads: join(dataDir, 'update', 'downloads'),
    /** Versions that failed to start here. */
    badVersions: join(dataDir, 'update', 'bad-versions.json'),
    /** Where single files unpack their payload: `binary/<version>-<digest>/` (scripts/sea/bootstrap.cjs). */
    binaries: join(dataDir, 'binary'),
  };
}

/** Written last into `versions/<version>/`; a folder without it is an interrupted install. */
export const INSTALLED_MARKER = '.installed.json';
