import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const APP_DIR_NAME = 'studio-worker';
export const CONFIG_FILE_NAME = 'config.toml';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where `config.toml` lives when `--config` is not given. `$XDG_CONFIG_HOME` wins on every platform
 * (tests and unusual setups redirect it); otherwise the platform's own per-user config location.
 */
export function defaultConfigPath(env: Env = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  const xdg = env.XDG_CONFIG_HOME?.trim();
  if (xdg) return join(xdg, APP_DIR_NAME, CONFIG_FILE_NAME);
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', APP_DIR_NAME, CONFIG_FILE_NAME);
  if (platform === 'win32') {
    const appData = env.APPDATA?.trim() || join(home, 'AppData', 'Roaming');
    return join(appData, APP_DIR_NAME, CONFIG_FILE_NAME);
  }
  return join(home, '.config', APP_DIR_NAME, CONFIG_FILE_NAME);
}

/**
 * The config `npm start` gives its local worker in a checkout at `root`: under its data dir
 * (`STUDIO_DATA_DIR`, default `<root>/.data`), `local-worker/config.toml`.
 */
export function npmStartConfigPath(root: string, env: Env = process.env): string {
  const dataDir = env.STUDIO_DATA_DIR?.trim();
  return join(dataDir ? resolve(dataDir) : join(root, '.data'), 'local-worker', CONFIG_FILE_NAME);
}

/** Default `models_root`: `$XDG_DATA_HOME/studio-worker/models`, else `~/.local/share/studio-worker/models`. */
export function defaultModelsRoot(env: Env = process.env, home: string = homedir()): string {
  const xdg = env.XDG_DATA_HOME?.trim();
  if (xdg) return join(xdg, APP_DIR_NAME, 'models');
  return join(home, '.local', 'share', APP_DIR_NAME, 'models');
}

/** The config dir holds `config.toml`, `daemon.lock`, `state.json` and `outbox/`. */
export function configDirOf(configPath: string): string {
  return dirname(configPath);
}

/** A leading `~/` (or a lone `~`) means the home directory. */
export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/') || path.startsWith('~\\')) return join(home, path.slice(2));
  return path;
}

/** Files the daemon keeps next to `config.toml` (`work/` holds running jobs' scratch dirs). */
export function daemonPaths(configPath: string): { dir: string; lock: string; state: string; outbox: string; work: string } {
  const dir = configDirOf(configPath);
  return { dir, lock: join(dir, 'daemon.lock'), state: join(dir, 'state.json'), outbox: join(dir, 'outbox'), work: join(dir, 'work') };
}
