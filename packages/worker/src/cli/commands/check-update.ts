import { ConfigError, readConfig } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import { AGENT_VERSION, USER_AGENT } from '../../platform/version.ts';
import { checkForUpdate, GIT_CHECKOUT_NOTE } from '../../update/check.ts';
import type { CliIo } from '../io.ts';

export interface CheckUpdateOptions {
  /** Default: this build's version. */
  currentVersion?: string;
  /** Default: `defaultDataDir()` (for the versions that failed here before). */
  dataDir?: string;
  /** Default: this package (to tell a git checkout). */
  packageRoot?: string;
  fetch?: typeof fetch;
}

/**
 * `studio-worker check-update`: one check against `auto_update_feed`, with the daemon's rules
 * (prereleases per `auto_update_prerelease`, deprecated and failed versions skipped). Prints
 * "up to date: X" or "update available: A -> B"; never installs. On a git checkout it asks no feed
 * and says "git checkout: update with git". Exit 0, or 1 when the feed could not be read.
 */
export async function checkUpdateCommand(configPath: string, io: CliIo, options: CheckUpdateOptions = {}): Promise<number> {
  let config;
  try {
    ({ config } = await readConfig(configPath));
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker check-update: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  const check = await checkForUpdate(config, {
    currentVersion: options.currentVersion ?? AGENT_VERSION,
    userAgent: USER_AGENT,
    dataDir: options.dataDir,
    packageRoot: options.packageRoot,
    fetch: options.fetch,
  });
  if (check.error) {
    io.err(`studio-worker check-update: ${check.error}`);
    return EXIT_ERROR;
  }
  if (check.gitCheckout) {
    io.out(`${GIT_CHECKOUT_NOTE} — ${check.gitCheckout}`);
    return EXIT_OK;
  }
  io.out(check.available ? `update available: ${check.current} -> ${check.latest}${check.prerelease ? ' (prerelease)' : ''}` : `up to date: ${check.current}`);
  for (const note of check.notes) io.out(`note: ${note}`);
  return EXIT_OK;
}
