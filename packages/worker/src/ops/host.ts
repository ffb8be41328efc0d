import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { SINGLE_FILE, WORKER_BIN as PACKAGE_BIN } from '../package-layout.ts';
import { spawnRunner, type CommandRunner } from './runner.ts';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The machine the day-to-day commands act on. Everything that differs between machines (platform,
 * home, environment, how platform commands run) comes in here, so tests run the Linux, macOS and
 * Windows paths on any machine against temp dirs and a recording runner.
 */
export interface Host {
  platform: NodeJS.Platform;
  env: Env;
  home: string;
  /** The user id (launchd's `gui/<uid>` domain); -1 where there is none (Windows). */
  uid: number;
  machineName: string;
  /** Absolute path of the Node binary that runs studio-worker (this process's); the worker itself when it is a single file. */
  node: string;
  /** Absolute path of `bin/studio-worker.js`; empty for a single-file worker (it needs no script). */
  bin: string;
  run: CommandRunner;
}

/** The package's `bin/studio-worker.js` (from the sources or from a built package alike). */
export const WORKER_BIN = PACKAGE_BIN;

export function currentHost(overrides: Partial<Host> = {}): Host {
  return {
    platform: process.platform,
    env: process.env,
    home: homedir(),
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    machineName: safeHostname(),
    node: process.execPath,
    bin: SINGLE_FILE ? '' : WORKER_BIN,
    run: spawnRunner,
    ...overrides,
  };
}

/** The argv that starts `studio-worker <args…> --config <path>`: [node, bin, …], or [single file, …]. */
export function workerArgv(host: Host, configPath: string, args: readonly string[]): string[] {
  return [host.node, ...(host.bin ? [host.bin] : []), ...args, '--config', configPath];
}

/** `$XDG_CONFIG_HOME`, else `~/.config` (freedesktop autostart and systemd user units live under it). */
export function xdgConfigHome(host: Host): string {
  const xdg = host.env.XDG_CONFIG_HOME?.trim();
  return xdg ? xdg : join(host.home, '.config');
}

function safeHostname(): string {
  try {
    return hostname() || 'unknown-host';
  } catch {
    return 'unknown-host';
  }
}
