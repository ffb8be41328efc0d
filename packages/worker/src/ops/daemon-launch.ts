import { spawn } from 'node:child_process';
import { closeSync, openSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { daemonPaths } from '../config/index.ts';
import { EXIT_LOCKED } from '../platform/exit-codes.ts';
import { isProcessAlive } from '../platform/lock.ts';
import { OpsError } from './errors.ts';
import { workerArgv, type Host } from './host.ts';
import { localApiHealthy, localApiInfoPath, readLocalApiInfo, type LocalApiInfo } from './local-api-info.ts';

/** How long `ui` waits for a daemon's local API (a started one, or one that holds the lock). */
export const DAEMON_READY_TIMEOUT_MS = 20_000;
/** Re-check this often as well: a file watch can miss an event, and /healthz may lag the file. */
const RECHECK_MS = 250;

/** Where a daemon started by `ui` writes its stdout and stderr (appended). */
export function daemonOutPath(configPath: string): string {
  return join(daemonPaths(configPath).dir, 'logs', 'daemon.out');
}

/** The pid in `daemon.lock` when that process is alive, else null. */
export async function lockOwner(configPath: string): Promise<number | null> {
  try {
    const text = (await readFile(daemonPaths(configPath).lock, 'utf8')).trim();
    const pid = /^\d+$/.test(text) ? Number(text) : null;
    return pid !== null && isProcessAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export interface DetachedDaemon {
  pid: number;
  outPath: string;
  /** Resolves with the exit code if the daemon ends while this process still runs. */
  exited: Promise<number | null>;
  /** What the daemon wrote to `outPath` since it was started (for an error message). */
  outputSoFar(): Promise<string>;
}

/**
 * `studio-worker run --config <path>` in its own process group, with stdin closed and its output
 * appended to `<config dir>/logs/daemon.out`. It outlives this process.
 */
export async function spawnDaemonDetached(host: Host, configPath: string): Promise<DetachedDaemon> {
  const outPath = daemonOutPath(configPath);
  await mkdir(join(outPath, '..'), { recursive: true, mode: 0o700 });
  const startOffset = await stat(outPath).then((info) => info.size, () => 0);
  const fd = openSync(outPath, 'a', 0o600);
  let child;
  try {
    const [command, ...args] = workerArgv(host, configPath, ['run']);
    child = spawn(command as string, args, { detached: true, stdio: ['ignore', fd, fd], windowsHide: true, env: { ...host.env } });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
  child.unref();
  if (child.pid === undefined) {
    throw new OpsError('daemon_start_failed', `could not start ${[host.node, host.bin].filter(Boolean).join(' ')} run; check that the file exists and is readable`);
  }
  return {
    pid: child.pid,
    outPath,
    exited,
    outputSoFar: async () => {
      const text = await readFile(outPath, 'utf8').catch(() => '');
      return text.slice(startOffset);
    },
  };
}

export interface RunningDaemon {
  info: LocalApiInfo;
  /** Whether this call started it. */
  started: boolean;
  /** The daemon's pid (from local-api.json, else the lock). */
  pid: number | null;
  outPath: string;
}

export interface EnsureDaemonOptions {
  timeoutMs?: number;
  /** Tell the user what is happening while they wait. */
  progress?: (message: string) => void;
}

/**
 * A daemon with a local API that answers: the running one, or one started now. Waits (≤ 20 s) for
 * `local-api.json` and `/healthz`, woken by changes in the config dir. Throws `OpsError` with what
 * to do when a started daemon exits, or when a daemon holds the lock but its API never comes up.
 */
export async function ensureDaemon(host: Host, configPath: string, options: EnsureDaemonOptions = {}): Promise<RunningDaemon> {
  const timeoutMs = options.timeoutMs ?? DAEMON_READY_TIMEOUT_MS;
  const paths = daemonPaths(configPath);
  const outPath = daemonOutPath(configPath);
  const ready = await healthyInfo(configPath);
  if (ready) return { info: ready, started: false, pid: ready.pid ?? (await lockOwner(configPath)), outPath };

  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const holder = await lockOwner(configPath);
  let daemon: DetachedDaemon | null = null;
  if (holder === null) {
    daemon = await spawnDaemonDetached(host, configPath);
    options.progress?.(`started the daemon (pid ${daemon.pid}); its output goes to ${daemon.outPath}`);
  } else {
    options.progress?.(`a daemon (pid ${holder}) is running; waiting for its local API`);
  }

  const outcome = await waitFor(paths.dir, timeoutMs, daemon?.exited, async () => healthyInfo(configPath));
  if (outcome.kind === 'ready') {
    const info = outcome.value;
    // Two starts at once: the other daemon took the lock and ours is exiting with 3.
    const ours = daemon !== null && (info.pid === undefined || info.pid === daemon.pid);
    if (daemon && !ours) options.progress?.(`another daemon (pid ${info.pid}) took the lock first; using that one`);
    return { info, started: ours, pid: info.pid ?? daemon?.pid ?? holder, outPath };
  }

  if (outcome.kind === 'exited' && daemon) {
    if (outcome.code === EXIT_LOCKED) {
      // Another daemon took the lock a moment before ours (a second `ui` at the same time): use that one.
      const other = await lockOwner(configPath);
      options.progress?.(`another daemon${other === null ? '' : ` (pid ${other})`} took the lock first; using that one`);
      const again = await waitFor(paths.dir, timeoutMs, undefined, async () => healthyInfo(configPath));
      if (again.kind === 'ready') return { info: again.value, started: false, pid: again.value.pid ?? other, outPath };
      throw stuck(host, configPath, other, timeoutMs);
    }
    const tail = lastLines(await daemon.outputSoFar(), 15);
    throw new OpsError(
      'daemon_start_failed',
      `the daemon exited at start (exit code ${outcome.code ?? 'unknown'})${tail ? `:\n${tail}\n` : '; '}` +
        `fix what it says (full output in ${daemon.outPath}) and run \`studio-worker ui\` again`,
    );
  }
  throw stuck(host, configPath, daemon?.pid ?? (await lockOwner(configPath)) ?? holder, timeoutMs);
}

function stuck(host: Host, configPath: string, pid: number | null, timeoutMs: number): OpsError {
  const paths = daemonPaths(configPath);
  const who = pid === null ? 'the daemon' : `the daemon (pid ${pid})`;
  const kill = pid === null ? 'stop it' : host.platform === 'win32' ? `stop it with \`taskkill /PID ${pid}\`` : `stop it with \`kill ${pid}\``;
  return new OpsError(
    'daemon_stuck',
    `${who} holds ${paths.lock} but its local API did not come up within ${Math.round(timeoutMs / 1000)} s (${localApiInfoPath(configPath)} missing or not answering); ` +
      `it seems stuck. Look at ${join(paths.dir, 'logs')} for why, ${kill} (a second signal within a moment is ignored; send it again after a second to force it), then run \`studio-worker ui\` again`,
  );
}

async function healthyInfo(configPath: string): Promise<LocalApiInfo | undefined> {
  const info = await readLocalApiInfo(configPath);
  if (!info) return undefined;
  return (await localApiHealthy(info.url)) ? info : undefined;
}

type WaitOutcome<T> = { kind: 'ready'; value: T } | { kind: 'exited'; code: number | null } | { kind: 'timeout' };

/**
 * Re-run `check` whenever something in `dir` changes (and every RECHECK_MS as a safety net) until it
 * answers, the watched daemon exits, or the time is up.
 */
function waitFor<T>(dir: string, timeoutMs: number, exited: Promise<number | null> | undefined, check: () => Promise<T | undefined>): Promise<WaitOutcome<T>> {
  return new Promise((resolve) => {
    let done = false;
    let checking = false;
    let again = false;
    let watcher: FSWatcher | undefined;
    const finish = (outcome: WaitOutcome<T>) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearInterval(tick);
      watcher?.close();
      resolve(outcome);
    };
    const run = async () => {
      if (done) return;
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      try {
        do {
          again = false;
          const value = await check();
          if (value !== undefined) return finish({ kind: 'ready', value });
        } while (again && !done);
      } finally {
        checking = false;
      }
    };
    const deadline = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    const tick = setInterval(() => void run(), RECHECK_MS);
    try {
      watcher = watch(dir, () => void run());
      watcher.on('error', () => {});
    } catch {
      // No file watching here (some network file systems): the interval still re-checks.
    }
    void exited?.then(async (code) => {
      // The daemon may have exited after writing its file (a fast crash right after start): one last look.
      const value = await check();
      finish(value !== undefined ? { kind: 'ready', value } : { kind: 'exited', code });
    });
    void run();
  });
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}
