import { spawn } from 'node:child_process';
import { onCpus } from './affinity.ts';
import { ownChild } from './child.ts';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchError } from './errors.ts';

const REPO_ROOT = join(import.meta.dirname, '..');
const STUDIO_BIN = join(REPO_ROOT, 'packages', 'studio', 'bin', 'studio.js');
/** Lines of the studio's output kept to explain a failure. */
const OUTPUT_TAIL_LINES = 40;

export interface StudioProcessOptions {
  /** Leave the data directory in place after the run (for inspection). */
  keepDataDir: boolean;
  /** Write a V8 CPU profile of the studio into this directory (`--cpu-prof`), written on exit. */
  cpuProfDir?: string;
  startTimeoutMs?: number;
  /** The script to run instead of packages/studio/bin/studio.js (tests start a broken one). */
  entry?: string;
  /** Where the temporary data directory is made; default the system temp dir. */
  tmpParent?: string;
  /** Serve this existing data directory instead of a new one (a restart); never removed here. */
  dataDir?: string;
  /** The admin token to start with (a restart keeps the first start's); default a random one. */
  adminToken?: string;
  /** Fill the data directory before the studio starts (e.g. preload jobs). */
  prepareDataDir?: (dataDir: string) => void;
  /** Run the studio (every thread of it) on these CPUs only, in taskset's list syntax (affinity.ts). */
  cpus?: string;
}

/** The real studio (`studio serve`), running as a child process on a free loopback port. */
export interface StudioProcess {
  url: string;
  pid: number;
  adminToken: string;
  dataDir: string;
  /** The studio's peak resident memory so far (VmHWM), in MiB; undefined where /proc cannot tell. */
  peakRssMb(): number | undefined;
  /** CPU seconds (user + system) the studio has used so far; undefined where /proc cannot tell. */
  cpuSeconds(): number | undefined;
  /** The last lines the studio wrote (stdout and stderr), to explain a failure. */
  outputTail(): string;
  /** SIGTERM (SIGKILL after 5 s), then remove the data directory unless it is kept. Idempotent. */
  stop(): Promise<void>;
}

/** A port nobody listens on right now: bind port 0, read what the kernel chose, close. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The pinned Node 24 (the system node cannot run .ts); this process's own binary as a fallback. */
function nodeBinary(): string {
  const pinned = join(REPO_ROOT, 'node_modules', '.bin', 'node');
  return existsSync(pinned) ? pinned : process.execPath;
}

export async function startStudioProcess(options: StudioProcessOptions): Promise<StudioProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(options.tmpParent ?? tmpdir(), 'studio-bench-'));
  const removeDataDir = !options.keepDataDir && options.dataDir === undefined;
  const adminToken = options.adminToken ?? `bench_${randomBytes(24).toString('hex')}`;
  try {
    options.prepareDataDir?.(dataDir);
  } catch (error) {
    if (removeDataDir) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const nodeArgs = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const [command, args] = onCpus(options.cpus, nodeBinary(), [...nodeArgs, options.entry ?? STUDIO_BIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir]);
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, STUDIO_ADMIN_TOKEN: adminToken, STUDIO_WORKER_LOG: 'warn', NO_PRETTY_LOGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const owned = ownChild(child, removeDataDir ? dataDir : undefined, OUTPUT_TAIL_LINES);
  const studio: StudioProcess = {
    url,
    pid: child.pid ?? -1,
    adminToken,
    dataDir,
    peakRssMb: owned.peakRssMb,
    cpuSeconds: owned.cpuSeconds,
    outputTail: owned.outputTail,
    stop: owned.stop,
  };

  try {
    await waitForHealth(url, owned.exited, options.startTimeoutMs ?? 20_000);
  } catch (error) {
    await studio.stop();
    const output = studio.outputTail();
    throw new BenchError(
      'studio_start_failed',
      `${(error as Error).message}${output ? `\n--- studio output ---\n${output}` : ''}`,
    );
  }
  return studio;
}

/** Poll GET /graphics/api/health until it answers 200, the child exits, or the time is up. */
async function waitForHealth(url: string, exited: Promise<number | string>, timeoutMs: number): Promise<void> {
  let exitedWith: number | string | undefined;
  void exited.then((code) => (exitedWith = code));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitedWith !== undefined) throw new Error(`the studio exited (${exitedWith}) before it answered ${url}/graphics/api/health`);
    try {
      const response = await fetch(`${url}/graphics/api/health`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the studio did not answer ${url}/graphics/api/health within ${Math.round(timeoutMs / 1000)} s`);
}
