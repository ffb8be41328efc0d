import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from './wait.ts';
import { WorkerProcess } from './worker-process.ts';

export type { LogLine } from './worker-process.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));
const CLI = join(REPO_ROOT, 'packages/worker/src/cli/main.ts');

export const TEST_AUTH_TOKEN = 'tok-SECRET-auth-0123456789abcdef';
export const TEST_LOCAL_API_TOKEN = 'lat-SECRET-local-api-0123456789';

/** Short timings so process tests run in well under a second per step. */
export function fastTimings(overrides: Record<string, number> = {}): string {
  const timings: Record<string, number> = {
    heartbeat_interval_ms: 100,
    read_idle_timeout_ms: 5000,
    connect_timeout_ms: 3000,
    reconnect_initial_ms: 40,
    reconnect_max_ms: 320,
    registration_poll_ms: 40,
    log_flush_ms: 50,
    upload_retry_base_ms: 30,
    ...overrides,
  };
  return `[advanced]\n${Object.entries(timings)
    .map(([key, value]) => `${key} = ${value}`)
    .join('\n')}\n`;
}

export interface TestConfig {
  dir: string;
  configPath: string;
  cleanup(): Promise<void>;
}

/** A fresh config dir with a config.toml pointing at `studioUrl`. */
export async function makeConfig(studioUrl: string, options: { approved?: boolean; extra?: string; timings?: Record<string, number> } = {}): Promise<TestConfig> {
  const dir = await mkdtemp(join(tmpdir(), 'studio-worker-test-'));
  const configPath = join(dir, 'config.toml');
  const lines = [
    `api_base_url = "${studioUrl}"`,
    `local_api_token = "${TEST_LOCAL_API_TOKEN}"`,
    'vram_threshold_gb = 8',
    // Any free port (unless the test picks one): test daemons must not compete for the default 4787.
    ...(/^\s*local_api_port\s*=/m.test(options.extra ?? '') ? [] : ['local_api_port = 0']),
    `models_root = "${join(dir, 'models')}"`,
    ...(options.approved === false ? [] : ['worker_id = "w-test"', `auth_token = "${TEST_AUTH_TOKEN}"`]),
    options.extra ?? '',
    fastTimings(options.timings),
  ];
  await writeFile(configPath, `${lines.join('\n')}\n`, { mode: 0o600 });
  return { dir, configPath, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The real daemon (`studio-worker run`) as a child process, with its output captured. */
export class DaemonProcess extends WorkerProcess {
  readonly configPath: string;
  readonly dir: string;

  /** `script`: another entry point, run as `<script> <configPath>` (see scripted-daemon.ts); `env`: added to the environment. */
  constructor(configPath: string, extraArgs: string[] = [], options: { script?: string; env?: Record<string, string> } = {}) {
    const args = options.script ? [options.script, configPath] : [CLI, 'run', '--config', configPath, ...extraArgs];
    // In the test runner's process group, like a daemon started from a terminal.
    super([process.execPath, ...args], { cwd: REPO_ROOT, env: { ...process.env, STUDIO_WORKER_LOG: 'debug', NO_PRETTY_LOGS: '1', ...options.env }, ownGroup: false });
    this.configPath = configPath;
    this.dir = resolve(configPath, '..');
  }

  /** state.json once `predicate` holds for it. */
  waitForState(predicate: (state: any) => boolean, what: string, timeoutMs?: number): Promise<any> {
    return pollUntil(
      async () => {
        if (this.exitInfo) throw new Error(`the daemon exited (${JSON.stringify(this.exitInfo)}) while waiting for state: ${what}\n${this.stderr}`);
        const state = await readState(this.dir);
        return state && state.pid === this.pid && predicate(state) ? state : undefined;
      },
      `state.json: ${what}`,
      timeoutMs,
    );
  }
}

export async function readState(dir: string): Promise<any> {
  try {
    return JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Run a CLI command to completion. */
export function runCliProcess(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (code) => resolvePromise({ code, stdout, stderr }));
  });
}
