// The two programs the HTTP fuzzer aims at, started for real: a studio process (every route of its
// API, its WebSockets and dashboard files) and a worker daemon connected to it (every route of its
// local API). Shared by the fuzz test and `npm run fuzz`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdImageClaim, type HeldClaim } from '../helpers/file-result.ts';
import { startStudioProcess, startWorkerProcess, writeWorkerConfig, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import type { FuzzTarget, RouteSpec } from './http-fuzzer.ts';

const ADMIN = 'http-fuzz-admin-token';

/** Every route of the studio (packages/studio/src/node/app.ts and routes/*), the sockets and the dashboard. */
export const STUDIO_ROUTES: RouteSpec[] = [
  { method: 'GET', path: '/graphics/api/health' },
  { method: 'POST', path: '/graphics/api/workers/register-request', body: 'json' },
  { method: 'GET', path: '/graphics/api/workers/register-requests/:id' },
  { method: 'GET', path: '/graphics/api/workers/pending' },
  { method: 'POST', path: '/graphics/api/workers/pending/:id/approve', body: 'json' },
  { method: 'POST', path: '/graphics/api/workers/pending/:id/reject', body: 'json' },
  { method: 'POST', path: '/graphics/api/workers/:id/jobs/:jobId/complete', body: 'multipart' },
  { method: 'GET', path: '/graphics/api/workers' },
  { method: 'POST', path: '/graphics/api/workers', body: 'json', destructive: true },
  { method: 'GET', path: '/graphics/api/workers/:id' },
  { method: 'DELETE', path: '/graphics/api/workers/:id', destructive: true },
  { method: 'GET', path: '/graphics/api/workers/:id/logs' },
  { method: 'POST', path: '/graphics/api/workers/:id/token', destructive: true },
  { method: 'GET', path: '/graphics/api/workers/:id/connect', upgrade: true },
  { method: 'GET', path: '/graphics/api/realtime', upgrade: true },
  { method: 'GET', path: '/graphics/api/jobs' },
  { method: 'POST', path: '/graphics/api/jobs', body: 'json' },
  { method: 'POST', path: '/graphics/api/jobs/batch', body: 'json' },
  { method: 'GET', path: '/graphics/api/jobs/:id' },
  { method: 'GET', path: '/graphics/api/jobs/:id/result' },
  { method: 'HEAD', path: '/graphics/api/jobs/:id/result' },
  { method: 'POST', path: '/graphics/api/jobs/:id/cancel', destructive: true },
  { method: 'POST', path: '/graphics/api/jobs/:id/retry' },
  { method: 'GET', path: '/graphics/api/models' },
  { method: 'POST', path: '/graphics/api/models', body: 'json' },
  { method: 'GET', path: '/graphics/api/models/:id' },
  { method: 'PATCH', path: '/graphics/api/models/:id', body: 'json' },
  { method: 'POST', path: '/graphics/api/models/:id/disable', destructive: true },
  { method: 'POST', path: '/graphics/api/models/:id/enable' },
  { method: 'GET', path: '/graphics/api/nothing/here' },
  { method: 'GET', path: '/' },
  { method: 'GET', path: '/app.js' },
  { method: 'GET', path: '/kit/:id' },
  { method: 'GET', path: '/../../etc/passwd' },
  { method: 'OPTIONS', path: '/graphics/api/jobs' },
];

/** Every route of the worker's local API (packages/worker/src/local-api/routes/*, server.ts, the UI). */
export const WORKER_ROUTES: RouteSpec[] = [
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/' },
  { method: 'GET', path: '/index.html' },
  { method: 'GET', path: '/kit/:id' },
  { method: 'GET', path: '/daemon/status' },
  { method: 'GET', path: '/daemon/logs' },
  { method: 'POST', path: '/daemon/pause', destructive: true },
  { method: 'POST', path: '/daemon/resume' },
  { method: 'GET', path: '/daemon/config' },
  { method: 'PUT', path: '/daemon/config', body: 'json', destructive: true },
  { method: 'POST', path: '/daemon/registration/reset', destructive: true },
  { method: 'POST', path: '/daemon/update/check', destructive: true },
  { method: 'POST', path: '/daemon/shutdown', destructive: true },
  { method: 'GET', path: '/jobs' },
  { method: 'GET', path: '/jobs/:id' },
  { method: 'GET', path: '/jobs/:id/log' },
  { method: 'GET', path: '/jobs/:id/thumbnail' },
  { method: 'GET', path: '/metrics' },
  { method: 'GET', path: '/models' },
  { method: 'POST', path: '/models', body: 'json', destructive: true },
  { method: 'POST', path: '/models/:id/download', destructive: true },
  { method: 'DELETE', path: '/models/:id', destructive: true },
  { method: 'GET', path: '/v1/models' },
  { method: 'POST', path: '/v1/images/generations', body: 'json' },
  { method: 'POST', path: '/v1/chat/completions', body: 'json' },
];

export interface FuzzEnvironment {
  studio: StudioProc;
  worker: Proc;
  studioTarget: FuzzTarget;
  workerTarget: FuzzTarget;
  stop(): Promise<void>;
}

/**
 * A studio with one held claim (so truncated uploads reach the multipart parser) and a worker
 * daemon connected to it, its local API found through local-api.json.
 */
export async function startFuzzEnvironment(options: { heapSnapshotDir?: string } = {}): Promise<FuzzEnvironment> {
  const dir = mkdtempSync(join(tmpdir(), 'http-fuzz-'));
  const dataDir = join(dir, 'studio');
  // SIGUSR2 writes a heap snapshot (after a full GC) of the live objects: a leak shows there even
  // when RSS is dominated by what the allocator keeps.
  const diagnostics = options.heapSnapshotDir ? { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${options.heapSnapshotDir}` } : {};
  const studio = await startStudioProcess({ dataDir, adminToken: ADMIN, env: { STUDIO_WORKER_LOG: 'error', ...diagnostics } });
  let held: HeldClaim | undefined;
  let worker: Proc | undefined;
  try {
    held = await holdImageClaim(studio, 'fuzz upload target');
    const creds = await studio.api.createWorker('fuzzed worker');
    const configPath = join(dir, 'worker', 'config.toml');
    await writeWorkerConfig(configPath, { apiBaseUrl: `${studio.url}/`, ...creds });
    const running = startWorkerProcess(configPath, { name: 'fuzzed-worker', env: { STUDIO_WORKER_LOG: 'error', ...diagnostics } });
    worker = running;
    const discovery = await waitFor('the worker local API', () => {
      const text = readFileSync(join(dir, 'worker', 'local-api.json'), 'utf8');
      const parsed = JSON.parse(text) as { url: string; token: string; pid: number };
      return parsed.pid === running.pid ? parsed : undefined;
    });
    const workerPort = Number(new URL(discovery.url).port);
    const heldClaim = held;
    return {
      studio,
      worker: running,
      studioTarget: {
        name: 'studio',
        port: studio.port,
        pid: studio.proc.pid,
        healthPath: '/graphics/api/health',
        routes: STUDIO_ROUTES,
        knownIds: [heldClaim.workerId, heldClaim.claim.jobId, creds.workerId, 'synthetic-image', 'base.css'],
        credentials: [`Bearer ${ADMIN}`],
        upload: { path: heldClaim.completePath, authorization: `Bearer ${heldClaim.authToken}` },
        host: `127.0.0.1:${studio.port}`,
        dataDir,
      },
      workerTarget: {
        name: 'worker local API',
        port: workerPort,
        pid: running.pid,
        healthPath: '/healthz',
        routes: WORKER_ROUTES,
        knownIds: ['synthetic-image', 'synthetic', 'base.css'],
        credentials: [`Bearer ${discovery.token}`],
        host: `127.0.0.1:${workerPort}`,
        dataDir: join(dir, 'worker'),
      },
      async stop() {
        heldClaim.close();
        await running.stop();
        await studio.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    held?.close();
    await worker?.stop();
    await studio.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
