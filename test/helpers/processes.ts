import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { saveConfig, defaultConfig, type WorkerConfig } from 'studio-worker';
import { StudioApi } from './api.ts';
import { waitFor } from './wait.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
const NODE = process.execPath;
export const STUDIO_BIN = join(ROOT, 'packages', 'studio', 'bin', 'studio.js');
export const STUDIO_CF_SCRIPT = join(ROOT, 'scripts', 'studio-cf.ts');
export const WORKER_BIN = join(ROOT, 'packages', 'worker', 'bin', 'studio-worker.js');

/** Every child started here; whatever is still alive when the test process exits is killed. */
const live = new Set<Proc>();
process.on('exit', () => {
  for (const proc of live) proc.killGroup('SIGKILL');
});

/**
 * A child process whose output we keep (and can wait on, line by line). It runs in its own process
 * group, and `stop` signals the whole group, so nothing it started (a watcher's child, an engine)
 * outlives the test.
 */
export class Proc {
  readonly child: ChildProcess;
  readonly name: string;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private listeners: Array<() => void> = [];

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT) {
    this.name = name;
    this.child = spawn(NODE, args, { cwd, env: { ...process.env, NO_PRETTY_LOGS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    live.add(this);
    const onData = (chunk: Buffer) => {
      this.output += chunk.toString();
      for (const l of this.listeners.splice(0)) l();
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        for (const l of this.listeners.splice(0)) l();
        // Anything the child left behind in its group goes too.
        this.killGroup('SIGKILL');
        live.delete(this);
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Wait for a line of output matching `pattern` (from any point in the output so far). */
  async waitForOutput(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (!this.alive) throw new Error(`${this.name} exited before printing ${pattern}:\n${this.output.slice(-3000)}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`${this.name} did not print ${pattern} in ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.listeners.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** JSON log lines with this `op` (or all). */
  logLines(op?: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of this.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (!op || parsed.op === op) out.push(parsed);
      } catch {
        // not a log line
      }
    }
    return out;
  }

  /** Signal every process in the child's group (no-op once the group is gone). */
  killGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is gone
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.alive) return this.exited;
    this.killGroup(signal);
    const timer = setTimeout(() => this.killGroup('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  kill9(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill('SIGKILL');
    return this.exited;
  }
}

export interface StudioProc {
  proc: Proc;
  url: string;
  port: number;
  api: StudioApi;
  stop(): Promise<unknown>;
}

/** `studio serve` as a real process on a free port (port 0; the URL is read from its start log). */
export async function startStudioProcess(options: {
  dataDir: string;
  port?: number;
  adminToken?: string;
  /** `studio serve` arguments (the Node host only; the Cloudflare host takes its settings from env). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  host?: 'node' | 'cloudflare';
  /** The claim lease, on either host (`--lease-seconds` / STUDIO_LEASE_SECONDS). */
  leaseSeconds?: number;
}): Promise<StudioProc> {
  const adminToken = options.adminToken ?? 'e2e-admin-token';
  const lease = options.leaseSeconds === undefined ? undefined : String(options.leaseSeconds);
  mkdirSync(options.dataDir, { recursive: true });
  // STUDIO_E2E_HOST=cloudflare runs a suite written for the Node host against the Cloudflare one.
  const host = options.host ?? (process.env.STUDIO_E2E_HOST === 'cloudflare' ? 'cloudflare' : 'node');
  const proc =
    host === 'cloudflare'
      ? // The Cloudflare host under workerd (scripts/studio-cf.ts), with its test-only eviction hook.
        new Proc('studio-cf', [STUDIO_CF_SCRIPT, ...(options.args ?? [])], {
          STUDIO_PORT: String(options.port ?? 0),
          STUDIO_CF_DATA_DIR: options.dataDir,
          STUDIO_CF_TEST_HOOKS: '1',
          WRANGLER_SEND_METRICS: 'false',
          STUDIO_ADMIN_TOKEN: adminToken,
          ...(lease === undefined ? {} : { STUDIO_LEASE_SECONDS: lease }),
          ...options.env,
        })
      : new Proc(
          'studio',
          [STUDIO_BIN, 'serve', '--port', String(options.port ?? 0), '--host', '127.0.0.1', '--data-dir', options.dataDir, ...(lease === undefined ? [] : ['--lease-seconds', lease]), ...(options.args ?? [])],
          { STUDIO_ADMIN_TOKEN: adminToken, STUDIO_WORKER_LOG: 'info', ...options.env },
        );
  // The plain start line on stderr does not depend on the log level.
  const match = await proc.waitForOutput(/listening on (http:\/\/127\.0\.0\.1:(\d+))/);
  const url = match[1] as string;
  return { proc, url, port: Number(match[2]), api: new StudioApi(url, adminToken), stop: () => proc.stop() };
}

/** Fast timings so tests do not wait for production intervals. */
export const FAST_TIMINGS: Partial<WorkerConfig['advanced']> = {
  heartbeatIntervalMs: 200,
  readIdleTimeoutMs: 3000,
  connectTimeoutMs: 3000,
  reconnectInitialMs: 100,
  reconnectMaxMs: 1000,
  registrationPollMs: 100,
  logFlushMs: 100,
  uploadRetryBaseMs: 50,
};

/** Write a worker config (pre-approved when credentials are given). */
export async function writeWorkerConfig(path: string, fields: Partial<WorkerConfig> & { apiBaseUrl: string }): Promise<void> {
  const base = defaultConfig();
  await saveConfig(path, {
    ...base,
    vramThresholdGb: 12,
    // Any free port: test daemons must not compete for the default 4787.
    localApiPort: 0,
    modelsRoot: join(path, '..', 'models'),
    shutdownGraceSecs: 2,
    ...fields,
    advanced: { ...base.advanced, ...FAST_TIMINGS, ...fields.advanced },
  });
}

export function startWorkerProcess(configPath: string, options: { name?: string; env?: NodeJS.ProcessEnv; args?: string[] } = {}): Proc {
  return new Proc(options.name ?? 'worker', [WORKER_BIN, 'run', '--config', configPath, ...(options.args ?? [])], { STUDIO_WORKER_LOG: 'info', ...options.env });
}

export function runWorkerCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const proc = new Proc('studio-worker', [WORKER_BIN, ...args], env);
  return proc.exited.then(({ code }) => ({ code, output: proc.output }));
}

/**
 * Pre-approved `studio-worker run` processes (one per name, configs under `dir/<name>`) for a
 * running studio; answers once every one of them is online.
 */
export async function startApprovedWorkers(studio: StudioProc, dir: string, names: readonly string[]): Promise<Proc[]> {
  const procs: Proc[] = [];
  for (const name of names) {
    const creds = await studio.api.createWorker(name);
    const config = join(dir, name, 'config.toml');
    await writeWorkerConfig(config, { apiBaseUrl: `${studio.url}/`, ...creds });
    procs.push(startWorkerProcess(config, { name }));
  }
  await waitFor(`${names.length} workers online`, async () => (await studio.api.workers()).filter((w) => w.state === 'online').length >= names.length);
  return procs;
}

/** A `studio …` client command (jobs, tokens, gc, backup …) as a process, pointed at a running studio. */
export function studioCli(studio: StudioProc, args: string[]): Proc {
  return new Proc('studio-cli', [STUDIO_BIN, ...args], { STUDIO_URL: studio.url, STUDIO_TOKEN: studio.api.token });
}

/** Run a `studio …` command to its end. */
export async function runStudioCli(studio: StudioProc, args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = studioCli(studio, args);
  const { code } = await proc.exited;
  return { code, output: proc.output };
}
