import type { WorkerConfig } from '../config/index.ts';
import { BadVersions } from './bad-versions.ts';
import { chooseUpdate } from './choose.ts';
import { UpdateError } from './errors.ts';
import { FeedClient } from './feed.ts';
import { detectInstallKind, OWN_PACKAGE_ROOT } from './installer.ts';
import { defaultDataDir, updatePaths } from './paths.ts';
import { isPrerelease, parseVersion } from './semver.ts';

export interface UpdateCheckOptions {
  currentVersion: string;
  userAgent: string;
  /** Default: `defaultDataDir()` (for the versions that failed here before). */
  dataDir?: string;
  /** Default: this package (to tell a git checkout). */
  packageRoot?: string;
  fetch?: typeof fetch;
}

/** One look at the feed with the daemon's rules; what `check-update` prints and the UI shows. */
export interface UpdateCheck {
  current: string;
  available: boolean;
  latest?: string;
  prerelease?: boolean;
  /** Why it was not checked, or the feed error. */
  error?: string;
  /** Set when this worker runs from a git checkout (its root): the feed is not asked, git updates it. */
  gitCheckout?: string;
  /** Skipped versions and what would happen next, one sentence each. */
  notes: string[];
}

/** What `check-update` and the UI say on a git checkout. */
export const GIT_CHECKOUT_NOTE = 'git checkout: update with git (git pull, then npm install)';

export async function checkForUpdate(config: Pick<WorkerConfig, 'autoUpdateFeed' | 'autoUpdatePrerelease' | 'autoUpdateEnabled' | 'autoUpdateIntervalSecs'>, options: UpdateCheckOptions): Promise<UpdateCheck> {
  const current = parseVersion(options.currentVersion);
  if (!current) {
    return { current: options.currentVersion, available: false, notes: [], error: `this build's version "${options.currentVersion}" is not a semantic version; it cannot be compared with the feed` };
  }
  const dataDir = options.dataDir ?? defaultDataDir();
  const kind = await detectInstallKind(options.packageRoot ?? OWN_PACKAGE_ROOT, updatePaths(dataDir).versions);
  // A checkout's version is whatever was pulled; a published release says nothing about it.
  if (kind.kind === 'git') return { current: current.text, available: false, gitCheckout: kind.root, notes: [GIT_CHECKOUT_NOTE] };
  const feedClient = new FeedClient({ http: { fetch: options.fetch ?? globalThis.fetch, userAgent: options.userAgent } });
  let feed;
  try {
    feed = await feedClient.fetch(config.autoUpdateFeed);
  } catch (error) {
    if (error instanceof UpdateError) return { current: current.text, available: false, notes: [], error: `check failed: ${error.message}` };
    throw error;
  }
  const bad = await new BadVersions(updatePaths(dataDir).badVersions).load();
  const choice = chooseUpdate(feed, { current, prerelease: config.autoUpdatePrerelease, bad: new Set(bad.keys()) });
  const notes: string[] = [];
  if (choice.kind !== 'up_to_date') {
    if (!config.autoUpdateEnabled) notes.push('auto_update_enabled is false, so the daemon will not install it');
    else notes.push(`a running daemon installs it between jobs at its next check (every ${config.autoUpdateIntervalSecs} s)`);
  }
  for (const skipped of choice.skipped) notes.push(`skipping ${skipped.version}: ${skipped.why}`);
  if (choice.kind === 'up_to_date') return { current: current.text, available: false, notes };
  const target = choice.release.version;
  return { current: current.text, available: true, latest: target.text, prerelease: isPrerelease(target), notes };
}
