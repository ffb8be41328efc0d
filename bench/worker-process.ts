import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, saveConfig } from 'studio-worker';
import { BenchError } from './errors.ts';

const REPO_ROOT = join(import.meta.dirname, '..');
const WORKER_BIN = join(REPO_ROOT, 'packages', 'worker', 'bin', 'studio-worker.js');
const OUTPUT_TAIL_LINES = 40;

/** One JSON log line of the worker daemon (pino: `time` is ISO with milliseconds). */
export interface WorkerLogLine {
  op?: string;
  msg?: string;
  level?: string;
  time?: string;
  jobId?: string;
  [key: string]: unknown;
}

export interface WorkerProcessOptions {
  /** The directory the worker's config.toml (and its outbox, state, lock) goes into. */
  dir: string;
  /** `http://127.0.0.1:<port>` of the studio. */
  studioUrl: string;
  workerId: string;
  authToken: string;
  /** Undefined: the config's default. */
  prefetch?: boolean;
  startTimeoutMs?: number;
  /** The script to run instead of the bin (e.g. a built `dist/cli.js`). */
  entry?: string;
  /** Write the built-in modules the daemon loaded to this file when it exits (loaded-builtins.mjs). */
  loadedBuiltinsFile?: string;
}

/** The real worker daemon (`studio-worker run --config <file>`), in its own process group. */
export interface WorkerProcess {
  pid: number;
  /** Features the studio listed in its welcome. */
  features: string[];
  /** The local API (`local-api.json`). */
  localApi: { url: string; token: string };
  /** Calls `listener` for every JSON log line from now on; returns the unsubscribe. */
  onLine(listener: (line: WorkerLogLine) => void): () => void;
  /** The worker's Prometheus text from `GET /metrics` on its local API. */
  metrics(): Promise<string>;
  /** Resolves with the exit code or signal once the daemon exited (whenever that happens). */
  exited: Promise<number | string>;
  outputTail(): string;
  /** SIGTERM to the whole group (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
}

function nodeBinary(): string {
  const pinned = join(REPO_ROOT, 'node_modules', '.bin', 'node');
  return existsSync(pinned) ? pinned : process.execPath;
}

/** A pre-approved worker config: the studio's credentials, prefetch as asked, no auto-update, a private local API port. */
export async function writeWorkerConfig(path: string, options: Pick<WorkerProcessOptions, 'studioUrl' | 'workerId' | 'authToken' | 'prefetch'>, dir: string): Promise<void> {
  const base = defaultConfig();
  await saveConfig(path, {
    ...base,
    apiBaseUrl: `${options.studioUrl}/`,
    workerId: options.workerId,
    authToken: options.authToken,
    label: 'bench',
    vramThresholdGb: 12,
    localApiPort: 0,
    modelsRoot: join(dir, 'models'),
    autoUpdateEnabled: false,
    autoStart: false,
    ...(options.prefetch === undefined ? {} : { prefetch: options.prefetch }),
    shutdownGraceSecs: 2,
    // Failed jobs must show up as failures in the bench, not as a pause.
    failureCooldownSecs: 0,
  });
}

/**
 * Start the daemon and wait until the studio welcomed it and its local API listens (both from its
 * own log lines). Fails with `worker_start_failed` and the daemon's last output otherwise.
 */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<WorkerProcess> {
  mkdirSync(options.dir, { recursive: true });
  const configPath = join(options.dir, 'config.toml');
  await writeWorkerConfig(configPath, options, options.dir);
  const probe = options.loadedBuiltinsFile ? ['--import', join(import.meta.dirname, 'loaded-builtins.mjs')] : [];
  const child: ChildProcess = spawn(nodeBinary(), [...probe, options.entry ?? WORKER_BIN, 'run', '--config', configPath], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      // Info is the daemon's default level; it carries the job start/finish lines the bench reads.
      STUDIO_WORKER_LOG: 'info',
      NO_PRETTY_LOGS: '1',
      // The daemon stops by itself if the bench dies without stopping it.
      STUDIO_WORKER_EXIT_WITH_PARENT: '1',
      ...(options.loadedBuiltinsFile ? { BENCH_LOADED_BUILTINS_FILE: options.loadedBuiltinsFile } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid ?? -1;
  const tail: string[] = [];
  const listeners = new Set<(line: WorkerLogLine) => void>();
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > OUTPUT_TAIL_LINES) tail.splice(0, tail.length - OUTPUT_TAIL_LINES);
  };
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.trim()) continue;
      remember(text);
      if (!text.startsWith('{')) continue;
      let line: WorkerLogLine;
      try {
        line = JSON.parse(text) as WorkerLogLine;
      } catch {
        continue;
      }
      for (const listener of listeners) listener(line);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    for (const text of chunk.toString('utf8').split('\n')) if (text.trim()) remember(text);
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is gone
    }
  };
  // Whatever happens to the bench, the daemon (and anything it started) goes with it.
  const onExit = () => killGroup('SIGKILL');
  process.once('exit', onExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    killGroup('SIGKILL'); // anything left in its group
    process.off('exit', onExit);
  };

  let features: string[] | undefined;
  let apiUrl: string | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the worker daemon was not welcomed by the studio with its local API up within ${Math.round((options.startTimeoutMs ?? 30_000) / 1000)} s`)),
        options.startTimeoutMs ?? 30_000,
      );
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the worker daemon exited (${code}) before the studio welcomed it`));
      });
      const listener = (line: WorkerLogLine) => {
        if (line.op === 'session' && Array.isArray(line.features)) features = line.features as string[];
        if (line.op === 'local_api' && typeof line.url === 'string') apiUrl = line.url;
        if (line.op === 'session' && (line.level === 'error' || line.level === 'fatal')) {
          clearTimeout(timer);
          reject(new Error(`the worker's session failed: ${line.msg ?? ''}`));
        }
        if (features && apiUrl) {
          clearTimeout(timer);
          listeners.delete(listener);
          resolve();
        }
      };
      listeners.add(listener);
    });
  } catch (error) {
    await stop();
    throw new BenchError('worker_start_failed', `${(error as Error).message}\n--- worker output ---\n${tail.join('\n')}`);
  }
  const discovery = JSON.parse(readFileSync(join(options.dir, 'local-api.json'), 'utf8')) as { url: string; token: string };

  return {
    pid,
    features: features ?? [],
    localApi: { url: discovery.url, token: discovery.token },
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async metrics() {
      const response = await fetch(`${discovery.url}/metrics`, { headers: { authorization: `Bearer ${discovery.token}` } });
      const text = await response.text();
      if (!response.ok) throw new BenchError('worker_metrics_failed', `GET ${discovery.url}/metrics answered ${response.status}: ${text.slice(0, 300)}`);
      return text;
    },
    exited,
    outputTail: () => tail.join('\n'),
    stop,
  };
}

/** The value of an unlabelled sample in a Prometheus exposition, or undefined. */
export function metricValue(exposition: string, name: string): number | undefined {
  for (const line of exposition.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1).trim().split(' ')[0]);
  }
  return undefined;
}
