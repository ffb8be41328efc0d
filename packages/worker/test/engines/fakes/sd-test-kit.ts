// Fixtures for the sd-cpp engine tests: the fakes' commands, model files on disk, jobs, a
// context that records progress, and process checks.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@studio-worker/log';
import { ModelSource, Task, type ModelSourceInput, type TaskInput } from '@studio-worker/protocol';
import assert from 'node:assert/strict';
import { EngineFailure, type EngineContext, type EngineJob, type EngineProgress, type ResolvedModelFile } from '../../../src/engines/engine.ts';
import { inputUrlPolicy } from '../../../src/platform/url-policy.ts';
import { Changes, pollUntil } from '../../helpers/wait.ts';

export const FAKE_SD_CLI = fileURLToPath(new URL('./sd-cli.mjs', import.meta.url));
export const FAKE_SD_SERVER = fileURLToPath(new URL('./sd-server.mjs', import.meta.url));

/** The fakes run on this very Node (the project's Node 24), whatever `node` is on PATH. */
export function fakeCommand(script: string): string[] {
  return [process.execPath, script];
}

/** A scratch directory removed by the returned cleanup. */
export async function scratch(prefix = 'sdcpp-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A scratch root with `models/`, `work/` and `state/` (the fakes' FAKE_SD_STATE_DIR) under it. */
export async function engineDirs(prefix: string): Promise<{ dir: string; modelsRoot: string; workDir: string; stateDir: string; cleanup: () => Promise<void> }> {
  const root = await scratch(prefix);
  const dirs = { dir: root.dir, modelsRoot: join(root.dir, 'models'), workDir: join(root.dir, 'work'), stateDir: join(root.dir, 'state'), cleanup: root.cleanup };
  await mkdir(dirs.workDir, { recursive: true });
  await mkdir(dirs.stateDir, { recursive: true });
  return dirs;
}

/** Model files as the runner leaves them: `<models_root>/<model>/<file>`, here a few bytes each. */
export async function modelFiles(modelsRoot: string, model: string, roles: Array<[ResolvedModelFile['role'], string]>): Promise<ResolvedModelFile[]> {
  const dir = join(modelsRoot, model);
  await mkdir(dir, { recursive: true });
  const files: ResolvedModelFile[] = [];
  for (const [role, filename] of roles) {
    const path = join(dir, filename);
    await writeFile(path, `fake ${role} weights`);
    files.push({ role, filename, path, url: `https://example.test/${filename}` });
  }
  return files;
}

/** Z-Image-Turbo's layout (original-spec §4.4): diffusion model, Qwen3 text encoder, VAE. */
export function zImageFiles(modelsRoot: string, model = 'z-image-turbo-q4_k_m.gguf'): Promise<ResolvedModelFile[]> {
  return modelFiles(modelsRoot, model, [
    ['diffusion-model', 'z_image_turbo-Q4_K.gguf'],
    ['text-encoder', 'Qwen3-4B-Instruct-2507-Q4_K_M.gguf'],
    ['vae', 'ae.safetensors'],
  ]);
}

export const Z_IMAGE_DEFAULTS = { cfgScale: 1.0, steps: 8, width: 1024, height: 1024, samplingMethod: 'euler' };

export function imageJob(task: Omit<Extract<TaskInput, { kind: 'image' }>, 'kind'>, files: ResolvedModelFile[], source: Partial<ModelSourceInput> = {}, model = 'z-image-turbo-q4_k_m.gguf'): EngineJob {
  return {
    jobId: `job-${Math.random().toString(36).slice(2, 8)}`,
    attempt: 1,
    model,
    task: Task.parse({ kind: 'image', ...task }),
    source: ModelSource.parse({ engine: 'sd-cpp', cliDefaults: Z_IMAGE_DEFAULTS, ...source }),
    files,
  };
}

/**
 * A context that records every progress update and lets a test wait for one. Input images are
 * fetched from `trustedOrigins` (a loopback file server) only when the test names them.
 */
export function recordingContext(workDir: string, signal: AbortSignal = new AbortController().signal, trustedOrigins: string[] = []) {
  const updates: EngineProgress[] = [];
  const changes = new Changes();
  const ctx: EngineContext = {
    signal,
    log: silentLogger,
    workDir,
    inputUrls: inputUrlPolicy(trustedOrigins),
    progress(update) {
      updates.push(update);
      changes.signal();
    },
  };
  const waitFor = (check: (update: EngineProgress) => boolean, what: string, timeoutMs?: number) =>
    changes.waitFor(() => updates.find(check), what, timeoutMs);
  return { ctx, updates, waitFor };
}

/**
 * Whether a process still runs. `process.kill(pid, 0)` throwing ESRCH means gone; a zombie (dead,
 * not yet reaped by a PID 1 that never reaps) also counts as gone.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return process.platform === 'linux' ? false : true;
  }
}

/** Wait (polling: another process owns the fact) until a process is gone. */
export function waitGone(pid: number, timeoutMs: number): Promise<true> {
  return pollUntil(() => (isRunning(pid) ? undefined : true), `process ${pid} to be gone`, timeoutMs, 10);
}

export interface FakeRecord {
  argv: string[];
  pid: number;
  grandchildPid: number | null;
  env: { LD_LIBRARY_PATH: string | null };
}

/** What the fake sd-cli recorded about itself next to its output. */
export function readRecord(workDir: string): FakeRecord {
  return JSON.parse(readFileSync(join(workDir, 'argv.json'), 'utf8')) as FakeRecord;
}

/** The value after a flag in an argv, or undefined. */
export function flagValue(argv: readonly string[], flag: string): string | undefined {
  const at = argv.indexOf(flag);
  return at < 0 ? undefined : argv[at + 1];
}

/** A small loopback HTTP server answering fixed bodies per path, for input images and releases. */
export async function serveFiles(routes: Record<string, { body: Uint8Array; status?: number }>): Promise<{ url: string; hits: string[]; close: () => Promise<void> }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.push(path);
    const route = routes[path];
    if (route === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(route.status ?? 200, { 'content-length': route.body.length });
    res.end(Buffer.from(route.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Run a job expecting a failure; answers the EngineFailure. */
export async function failure(promise: Promise<unknown>): Promise<EngineFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof EngineFailure, `expected an EngineFailure, got ${String(error)}`);
    return error;
  }
  assert.fail('the job succeeded but a failure was expected');
}
