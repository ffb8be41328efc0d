import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultConfigPath, npmStartConfigPath } from './index.ts';
import { CHECKOUT_ROOT } from '../package-layout.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** Where the config came from: `--config`, `npm start`'s local worker (in a checkout), or the per-user default. */
export type ConfigSource = 'flag' | 'npm-start' | 'user';

export interface ResolvedConfig {
  path: string;
  source: ConfigSource;
}

/**
 * The config a command uses: `--config` when given; in a checkout, `npm start`'s local worker config
 * when it exists (that is the worker a user of the checkout runs), unless `XDG_CONFIG_HOME` points
 * elsewhere on purpose; else the per-user default.
 */
export function resolveConfigPath(flag: string | undefined, env: Env = process.env, checkoutRoot: string | null = CHECKOUT_ROOT ?? null): ResolvedConfig {
  if (flag !== undefined) return { path: resolve(flag), source: 'flag' };
  if (checkoutRoot && !env.XDG_CONFIG_HOME?.trim()) {
    const local = npmStartConfigPath(checkoutRoot, env);
    if (existsSync(local)) return { path: local, source: 'npm-start' };
  }
  return { path: resolve(defaultConfigPath(env)), source: 'user' };
}

/** (`checkoutRoot` null: not a checkout.) How the CLI is typed here: `npm run worker --` in a checkout (the bin is not on PATH there), else `studio-worker`. */
export function cliName(checkoutRoot: string | null = CHECKOUT_ROOT ?? null): string {
  return checkoutRoot ? 'npm run worker --' : 'studio-worker';
}

/**
 * A command line that runs as printed: the CLI as typed here, the command, and `--config <path>`
 * unless the path is the one the command would find by itself.
 */
export function commandHint(configPath: string, command: string, env: Env = process.env, checkoutRoot: string | null = CHECKOUT_ROOT ?? null): string {
  // Only the per-user default goes without saying; any other config is named, so the line works
  // from any folder and whatever exists there.
  const implicit = resolve(configPath) === resolve(defaultConfigPath(env)) && resolveConfigPath(undefined, env, checkoutRoot).source === 'user';
  return `${cliName(checkoutRoot)} ${command}${implicit ? '' : ` --config ${shellWord(configPath)}`}`;
}

/** One word for a POSIX shell: as is when it is plain, else in single quotes. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
