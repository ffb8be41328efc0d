import { spawn, type StdioOptions } from 'node:child_process';
import { signalTree } from '../platform/process-tree.ts';
import { settlesWithin } from '../platform/sleep.ts';
import { ROLLED_BACK_FROM_ENV, UPDATED_FROM_ENV, readStartup } from './started-marker.ts';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: string;
}

/** A started worker process that is to take over from this one. */
export interface Successor {
  pid: number | undefined;
  /** Resolves when the process ends (or failed to start). */
  exited: Promise<ExitStatus>;
  /** Stop it (its whole process group on unix): SIGTERM, then SIGKILL after `graceMs`. Resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Let it run on after this process exits. */
  detach(): void;
}

/** Starts a version's entry script as a new worker process (the "restart hook"). */
export interface Launcher {
  start(entry: string, env: Record<string, string>): Successor;
}

export interface DetachedLauncherOptions {
  /** Default: the Node running this worker. */
  execPath?: string;
  /** Node flags (default: ours, without --inspect*, which would clash on the debug port). */
  execArgv?: readonly string[];
  /** The worker's arguments (default: ours, so `run --config <file>` carries over). */
  args?: readonly string[];
  /** Default: stdin closed, stdout and stderr shared with this process (the same log file or terminal). */
  stdio?: StdioOptions;
  baseEnv?: NodeJS.ProcessEnv;
}

/** A JavaScript file Node runs, as opposed to an executable (a single-file worker). */
export function isScript(entry: string): boolean {
  return /\.[cm]?js$/i.test(entry);
}

/**
 * `node <entry> <our argv>` (or `<entry> <our argv>` for a single file) in its own process group, so it outlives us and a terminal's Ctrl-C
 * for the old process group does not reach it.
 */
export function detachedLauncher(options: DetachedLauncherOptions = {}): Launcher {
  return {
    start(entry, env) {
      const execArgv = options.execArgv ?? process.execArgv.filter((flag) => !flag.startsWith('--inspect'));
      const args = options.args ?? process.argv.slice(2);
      // A script runs under Node (`node <entry>`); a single-file version is its own executable.
      const [command, argv] = isScript(entry) ? [options.execPath ?? process.execPath, [...execArgv, entry, ...args]] : [entry, args];
      const child = spawn(command, argv, {
        detached: true,
        stdio: options.stdio ?? ['ignore', 'inherit', 'inherit'],
        env: { ...withoutHandoverMarks(options.baseEnv ?? process.env), ...env },
        windowsHide: true,
      });
      const exited = new Promise<ExitStatus>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        child.once('error', (error) => resolve({ code: null, signal: null, error: error.message }));
      });
      let done = false;
      void exited.then(() => (done = true));
      const signalGroup = (signal: NodeJS.Signals) => {
        if (done || child.pid === undefined) return;
        signalTree(child.pid, signal);
      };
      return {
        pid: child.pid,
        exited,
        async stop(graceMs = 5_000) {
          if (done) return;
          signalGroup('SIGTERM');
          if (!(await settlesWithin(exited, graceMs))) {
            signalGroup('SIGKILL');
            await exited;
          }
        },
        detach() {
          child.unref();
        },
      };
    },
  };
}

/** Our own "updated from" / "rolled back from" describe this process, not the one we start. */
function withoutHandoverMarks(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { [UPDATED_FROM_ENV]: _updated, [ROLLED_BACK_FROM_ENV]: _rolledBack, ...rest } = env;
  return rest;
}

export interface HealthWait {
  configDir: string;
  version: string;
  successor: Successor;
  /** The successor must have written its started record within this. */
  timeoutMs: number;
  /** …and still be running this long after it did (a start that crashes a moment later is not healthy). */
  settleMs: number;
  pollMs?: number;
}

export type Health = { healthy: true } | { healthy: false; reason: string };

/**
 * Healthy = the successor wrote `started.json` with the expected version (and its own pid, when
 * known) within `timeoutMs`, and was still running `settleMs` later.
 */
export async function waitUntilHealthy(wait: HealthWait): Promise<Health> {
  const pollMs = wait.pollMs ?? 250;
  const deadline = performance.now() + wait.timeoutMs;
  let exit: ExitStatus | undefined;
  void wait.successor.exited.then((status) => (exit = status));
  const exitedEarly = (when: string): Health => ({ healthy: false, reason: `${describeExit(exit ?? { code: null, signal: null })} ${when}` });

  for (;;) {
    if (exit) return exitedEarly('before it reported healthy');
    const record = await readStartup(wait.configDir);
    if (record && record.version === wait.version && (wait.successor.pid === undefined || record.pid === wait.successor.pid)) break;
    if (performance.now() >= deadline) return { healthy: false, reason: `did not report healthy (${wait.configDir}/started.json) within ${seconds(wait.timeoutMs)}` };
    await settlesWithin(wait.successor.exited, pollMs);
  }
  if (wait.settleMs > 0) await settlesWithin(wait.successor.exited, wait.settleMs);
  if (exit) return exitedEarly(`within ${seconds(wait.settleMs)} of starting`);
  return { healthy: true };
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${Number((ms / 1000).toFixed(1))} s` : `${Math.round(ms / 1000)} s`;
}

export function describeExit(status: ExitStatus): string {
  if (status.error) return `could not be started (${status.error})`;
  if (status.signal) return `was killed by ${status.signal}`;
  return `exited with code ${status.code ?? 'unknown'}`;
}
