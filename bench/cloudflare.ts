/**
 * `npm run bench:cf`: the Cloudflare host under workerd (Miniflare 4, locally, offline).
 *
 * 1. One object's ceiling: W simulated workers in one pool send heartbeats as fast as the object
 *    answers (a window of 32 unanswered per socket); every heartbeat is a message through
 *    `webSocketMessage`, a SQL write and an answer frame. Figure: messages/s.
 * 2. Dispatch in one object: one job at a time with every worker idle, create request → offer
 *    frame at a worker (p50/p99), then jobs/s for a backlog drained by the workers.
 * 3. Sharding: the same backlog split over 1, 2 and 4 pools (one Durable Object each, W workers
 *    per pool), submitted to each pool at once. Figure: jobs/s across pools.
 *
 * Under Miniflare every object runs in one local workerd process, so pools share this machine's
 * cores: the figures say what one object costs and whether the Worker's routing adds a bottleneck,
 * not what Cloudflare's network would give (there each object has a thread of its own).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { SUBPROTOCOL } from '@studio-worker/protocol';
import { startCfStudio } from '../scripts/studio-cf.ts';
import { createApiClient, type ApiClient } from './api-client.ts';
import { BenchError } from './errors.ts';
import { benchMain, parseBenchFlags, wholeNumber } from './flags.ts';
import { JobTracker } from './job-tracker.ts';
import { measureDispatchLatency, measureThroughput } from './phases.ts';
import { benchCapabilities, SimWorker } from './sim-worker.ts';
import { ms3 } from './stats.ts';

const USAGE = 'usage: npm run bench:cf -- [--workers W] [--jobs M] [--samples K] [--seconds S] [--rounds R] [--json] [--keep]';
const POOLS = ['default', 'p1', 'p2', 'p3'];
const ADMIN = 'bench-cf-admin-token';

interface Options {
  workers: number;
  jobs: number;
  samples: number;
  seconds: number;
  rounds: number;
  json: boolean;
  keep: boolean;
}

function parse(argv: readonly string[]): Options {
  const v = parseBenchFlags(argv, { workers: { type: 'string' }, jobs: { type: 'string' }, samples: { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' } }, USAGE);
  return {
    workers: wholeNumber('workers', v.workers, 8, 1, 1000, USAGE),
    jobs: wholeNumber('jobs', v.jobs, 2000, 10, 1_000_000, USAGE),
    samples: wholeNumber('samples', v.samples, 200, 10, 100_000, USAGE),
    seconds: wholeNumber('seconds', v.seconds, 5, 1, 600, USAGE),
    rounds: wholeNumber('rounds', v.rounds, 3, 1, 20, USAGE),
    json: v.json,
    keep: v.keep,
  };
}

/** The API client with `?pool=` on every path (the Worker routes by it). */
export function inPool(api: ApiClient, pool: string): ApiClient {
  const at = (path: string) => `${path}${path.includes('?') ? '&' : '?'}pool=${pool}`;
  return { post: (path, body) => api.post(at(path), body), get: (path) => api.get(at(path)), close: () => api.close() };
}

/** `count` simulated workers created in `pool` (`POST /workers?pool=`; none given: no pool, as the Node host takes it), connected one by one. */
export async function startWorkers(api: ApiClient, wsBase: string, pool: string | undefined, count: number, tracker: JobTracker, heartbeatMs = 5000): Promise<SimWorker[]> {
  const workers: SimWorker[] = [];
  for (let i = 0; i < count; i++) {
    const creds = await (pool === undefined ? api : inPool(api, pool)).post<{ workerId: string; authToken: string }>('/workers', { label: `bench-${pool ?? 'w'}-${i}` });
    const worker = new SimWorker({ wsBase, workerId: creds.workerId, authToken: creds.authToken, events: tracker, heartbeatMs });
    await worker.connect();
    workers.push(worker);
  }
  return workers;
}

/** Heartbeats as fast as one object answers them, over `count` sockets, for `seconds`. */
async function messageCeiling(api: ApiClient, wsBase: string, count: number, seconds: number): Promise<{ messages: number; perSec: number }> {
  const window = 32;
  let acks = 0;
  let stop = false;
  const sockets: Array<{ ws: WebSocket; heartbeat: string }> = [];
  const runs: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const creds = await api.post<{ workerId: string; authToken: string }>('/workers', { label: `ceiling-${i}` });
    const caps = benchCapabilities(creds.workerId);
    const heartbeat = JSON.stringify({ type: 'heartbeat', capabilities: caps, inFlight: [] });
    const ws = new WebSocket(`${wsBase}/graphics/api/workers/${creds.workerId}/connect`, SUBPROTOCOL, { headers: { authorization: `Bearer ${creds.authToken}` }, perMessageDeflate: false });
    sockets.push({ ws, heartbeat });
    runs.push(
      new Promise<void>((resolve, reject) => {
        let welcomed = false;
        ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', authToken: creds.authToken, capabilities: caps, inFlight: [] })));
        ws.on('error', (error) => reject(new BenchError('worker_connect_failed', error.message)));
        ws.on('message', (data) => {
          const type = (JSON.parse(data.toString()) as { type: string }).type;
          if (!welcomed && type === 'welcome') {
            welcomed = true;
            resolve();
            return;
          }
          if (type !== 'heartbeatAck') return;
          acks++;
          if (!stop) ws.send(heartbeat);
        });
      }),
    );
  }
  await Promise.all(runs);
  const t0 = performance.now();
  const first = acks;
  // Each answer sends the next heartbeat, so each socket keeps `window` of them in flight.
  for (const { ws, heartbeat } of sockets) for (let k = 0; k < window; k++) ws.send(heartbeat);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  stop = true;
  const elapsed = (performance.now() - t0) / 1000;
  const messages = acks - first;
  for (const { ws } of sockets) ws.close(1000, 'bench finished');
  return { messages, perSec: messages / elapsed };
}

/**
 * One round of the sharded figure: `workersPerPool` fresh workers in each pool, then `jobs` split
 * evenly over the pools and submitted to each pool at once (batches of 100, `?pool=`). Answers
 * jobs/s across pools (first batch sent → last completeAck). Job numbers start at `firstN`.
 */
export async function shardedThroughput(api: ApiClient, wsBase: string, pools: readonly string[], workersPerPool: number, jobs: number, firstN: number, batch = 100): Promise<number> {
  const trackers = new Map<string, JobTracker>();
  const all: SimWorker[] = [];
  try {
    for (const pool of pools) {
      const t = new JobTracker();
      trackers.set(pool, t);
      all.push(...(await startWorkers(api, wsBase, pool, workersPerPool, t)));
    }
    const per = Math.floor(jobs / pools.length);
    const t0 = performance.now();
    await Promise.all(pools.map((pool, i) => measureThroughput(inPool(api, pool), trackers.get(pool) as JobTracker, per, batch, firstN + i * per, 20_000, () => undefined)));
    return (per * pools.length) / ((performance.now() - t0) / 1000);
  } finally {
    for (const w of all) w.close();
  }
}

async function run(options: Options, say: (line: string) => void): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-cf-'));
  process.env.WRANGLER_SEND_METRICS = 'false';
  const { url, mf } = await startCfStudio({ port: 0, host: '127.0.0.1', dataDir, adminToken: ADMIN, vars: { STUDIO_POOLS: POOLS.join(','), STUDIO_LOG_LEVEL: 'warn' } });
  const base = url.replace(/\/$/, '');
  const wsBase = base.replace(/^http/, 'ws');
  const api = createApiClient('fetch', base, ADMIN);
  const all: SimWorker[] = [];
  try {
    say(`studio (workerd) at ${base}; ${options.workers} workers per pool`);
    const ceiling = await messageCeiling(inPool(api, 'ceiling'), wsBase, options.workers, options.seconds);
    say(`one object: ${Math.round(ceiling.perSec)} messages/s (${ceiling.messages} heartbeats answered in ${options.seconds} s)`);

    const tracker = new JobTracker();
    all.push(...(await startWorkers(api, wsBase, 'default', options.workers, tracker)));
    const latency = await measureDispatchLatency(api, tracker, options.samples, 20, 0, () => undefined);
    say(`dispatch (one object, idle workers): p50 ${latency.summary.p50.toFixed(2)} ms, p99 ${latency.summary.p99.toFixed(2)} ms (${latency.summary.count} samples)`);
    for (const w of all.splice(0)) w.close();

    // Sharding: each configuration `rounds` times (fresh workers each time), the best round kept —
    // on a shared machine the other processes' load only ever slows a round down. A first round
    // in the default pool warms the batch route's code paths up and is not counted.
    const sharded: Array<{ pools: number; jobsPerSec: number; seconds: number }> = [];
    let n = 1_000_000;
    const shardRound = async (pools: string[], jobs: number): Promise<number> => {
      const perSec = await shardedThroughput(api, wsBase, pools, options.workers, jobs, n);
      n += jobs;
      return perSec;
    };
    await shardRound(['default'], Math.min(options.jobs, 400));
    for (const count of [1, 2, 4]) {
      let best = 0;
      for (let round = 0; round < options.rounds; round++) best = Math.max(best, await shardRound(POOLS.slice(0, count), options.jobs));
      sharded.push({ pools: count, jobsPerSec: best, seconds: options.jobs / best });
      say(`${count} pool${count > 1 ? 's' : ''}: ${Math.round(best)} jobs/s (best of ${options.rounds} rounds of ${options.jobs} jobs)`);
    }
    return JSON.stringify({
      bench: 'cloudflare',
      host: 'workerd (miniflare 4)',
      workersPerPool: options.workers,
      messagesPerSec: Math.round(ceiling.perSec),
      dispatchMs: { p50: ms3(latency.summary.p50), p99: ms3(latency.summary.p99), samples: latency.summary.count },
      sharded: sharded.map((s) => ({ pools: s.pools, jobsPerSec: Math.round(s.jobsPerSec) })),
    });
  } finally {
    for (const w of all) w.close();
    api.close();
    await mf.dispose();
    if (!options.keep) rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchMain('bench:cf', parse, run);
