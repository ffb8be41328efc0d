/**
 * `npm run bench:hosts`: the same bench against both hosts, in one run — the Node studio
 * (`studio serve`, bench/studio-process.ts) and the Cloudflare host (the Worker and its Durable
 * Objects under workerd, Miniflare 4, scripts/studio-cf.ts), one after the other, the order
 * flipped every round. Per host, with the same simulated workers, jobs and client:
 *
 * 1. dispatch p50/p99: one job at a time, every worker idle (bench/phases.ts, as `npm run bench`);
 * 2. jobs/s: M jobs in batches drained by W workers (bench/phases.ts);
 * 3. idle sessions held per studio/object: S idle worker sessions (hello → welcome, heartbeats
 *    every `--heartbeat-ms`, bench/idle-sessions.ts) held by one studio process / one object,
 *    until each has had one more heartbeat answered; the process's RSS before and after (Node:
 *    the studio; Cloudflare: the workerd process, which runs the Worker and every object), and
 *    the cores it used during that heartbeat round;
 * 4. Cloudflare only: jobs/s with the W workers and M jobs spread over 1, 2 and 4 pools (one
 *    object each; bench/cloudflare.ts `shardedThroughput`).
 *
 * Locally workerd runs every object in one process, so more pools measure the Worker's routing
 * and one object's ceiling, not Cloudflare's scale-out (there each object has a thread of its own).
 * The 1-minute load average is recorded with each host's figures: the machine may be shared.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCfStudio } from '../scripts/studio-cf.ts';
import { createApiClient, type ApiClient } from './api-client.ts';
import { inPool, shardedThroughput, startWorkers } from './cloudflare.ts';
import { BenchError } from './errors.ts';
import { benchMain, parseBenchFlags, wholeNumber } from './flags.ts';
import { bounded, IdleSession, residentKb } from './idle-sessions.ts';
import { JobTracker } from './job-tracker.ts';
import { processCpuSeconds } from './machine-cpu.ts';
import { measureDispatchLatency, measureThroughput } from './phases.ts';
import { figures } from './report.ts';
import type { SimWorker } from './sim-worker.ts';
import { startStudioProcess } from './studio-process.ts';

const USAGE =
  'usage: npm run bench:hosts -- [--workers W] [--jobs M] [--batch B] [--samples K] [--warmup N] [--sessions S] [--heartbeat-ms MS] [--rounds R] [--hosts node,cloudflare] [--tmp-dir DIR] [--json] [--keep]';
/** The pools of the sharded figure (the object names: `idFromName(pool)`). */
const POOLS = ['default', 'p1', 'p2', 'p3'];
const SHARD_COUNTS = [1, 2, 4] as const;
const HOSTS = ['node', 'cloudflare'] as const;
type HostName = (typeof HOSTS)[number];

export interface HostsOptions {
  workers: number;
  jobs: number;
  batch: number;
  samples: number;
  warmup: number;
  sessions: number;
  heartbeatMs: number;
  rounds: number;
  hosts: HostName[];
  /** Where both hosts' data directories are made (the same filesystem for both). */
  tmpDir: string;
  json: boolean;
  keep: boolean;
}

export function parseHostsArgs(argv: readonly string[]): HostsOptions {
  const v = parseBenchFlags(
    argv,
    {
      workers: { type: 'string' },
      jobs: { type: 'string' },
      batch: { type: 'string' },
      samples: { type: 'string' },
      warmup: { type: 'string' },
      sessions: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      rounds: { type: 'string' },
      hosts: { type: 'string' },
      'tmp-dir': { type: 'string' },
    },
    USAGE,
  );
  const hosts = (v.hosts ?? HOSTS.join(',')).split(',');
  for (const h of hosts) if (!(HOSTS as readonly string[]).includes(h)) throw new BenchError('bad_flag', `--hosts takes node and/or cloudflare, comma-separated (got "${h}")\n${USAGE}`);
  const options: HostsOptions = {
    workers: wholeNumber('workers', v.workers, 16, 4, 1000, USAGE),
    jobs: wholeNumber('jobs', v.jobs, 2000, 8, 1_000_000, USAGE),
    batch: wholeNumber('batch', v.batch, 100, 1, 1000, USAGE),
    samples: wholeNumber('samples', v.samples, 200, 5, 100_000, USAGE),
    warmup: wholeNumber('warmup', v.warmup, 20, 0, 100_000, USAGE),
    sessions: wholeNumber('sessions', v.sessions, 500, 1, 20_000, USAGE),
    heartbeatMs: wholeNumber('heartbeat-ms', v['heartbeat-ms'], 5000, 100, 60_000, USAGE),
    rounds: wholeNumber('rounds', v.rounds, 2, 1, 20, USAGE),
    hosts: hosts as HostName[],
    tmpDir: v['tmp-dir'] ?? tmpdir(),
    json: v.json,
    keep: v.keep,
  };
  if (options.workers % 4 !== 0) throw new BenchError('bad_flag', `--workers must be a multiple of 4 (spread evenly over 1, 2 and 4 pools; got ${options.workers})\n${USAGE}`);
  return options;
}

/** What one host measured in one round. */
export interface HostFigures {
  host: HostName;
  round: number;
  /** 1-minute load average when the host's phases began and ended. */
  load1: [number, number];
  workers: number;
  dispatchP50Ms: number;
  dispatchP99Ms: number;
  jobsPerSec: number;
  samples: number;
  jobs: number;
  /** Cores the studio process (Node) / the workerd process (Cloudflare) kept busy while the jobs ran. */
  studioCpuCores?: number;
  /** Cores everything else on the machine used meanwhile. */
  otherCpuCores?: number;
  sessions: SessionFigures;
  /** Cloudflare only: jobs/s with the workers and jobs spread over 1, 2 and 4 pools. */
  sharded?: Array<{ pools: number; jobsPerSec: number }>;
}

export interface SessionFigures {
  held: number;
  /** RSS of the process before the sessions connected and while holding them (MiB). */
  rssBeforeMb: number;
  rssHeldMb: number;
  kbPerSession: number;
  /** Cores the process used during one heartbeat round of every session. */
  cpuCores?: number;
  heartbeatMs: number;
}

/** A started host: where it listens, which process does the work, how to stop it. */
interface RunningHost {
  url: string;
  adminToken: string;
  /** The process whose RSS and CPU count: the Node studio, or workerd. */
  pid: number;
  /** Pools to spread over (Cloudflare); undefined: the host has one studio and no pools. */
  pools?: string[];
  outputTail(): string;
  stop(): Promise<void>;
}

/** The workerd process Miniflare spawned from this process (it runs the Worker and every object). */
function workerdChildPid(): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm.startsWith('workerd')) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new BenchError('no_proc', 'found no workerd child process in /proc: the hosts bench needs Linux');
}

async function startHost(host: HostName, tmpParent: string, keep: boolean): Promise<RunningHost> {
  if (host === 'node') {
    const studio = await startStudioProcess({ keepDataDir: keep, tmpParent });
    const stop = async () => {
      await studio.stop();
      if (keep) process.stderr.write(`kept the Node studio's data in ${studio.dataDir}\n`);
    };
    return { url: studio.url, adminToken: studio.adminToken, pid: studio.pid, outputTail: studio.outputTail, stop };
  }
  const dataDir = mkdtempSync(join(tmpParent, 'bench-hosts-cf-'));
  process.env.WRANGLER_SEND_METRICS = 'false';
  const adminToken = `bench_cf_${process.pid}_${Date.now()}`;
  try {
    const { url, mf } = await startCfStudio({ port: 0, host: '127.0.0.1', dataDir, adminToken, vars: { STUDIO_POOLS: POOLS.join(','), STUDIO_LOG_LEVEL: 'warn' } });
    return {
      url: url.replace(/\/$/, ''),
      adminToken,
      pid: workerdChildPid(),
      pools: POOLS,
      outputTail: () => '',
      stop: async () => {
        await mf.dispose();
        if (keep) process.stderr.write(`kept the Cloudflare host's data in ${dataDir}\n`);
        else rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/** S idle sessions in one studio / one object, held until each had one more heartbeat answered. */
async function holdIdleSessions(api: ApiClient, wsBase: string, pid: number, options: HostsOptions): Promise<SessionFigures> {
  const abort = new AbortController();
  const credentials: Array<{ workerId: string; authToken: string }> = new Array(options.sessions);
  await bounded(options.sessions, 16, async (i) => {
      credentials[i] = await api.post('/workers', { label: `idle-${i}` });
    },
    abort.signal,
  );
  const before = residentKb(pid);
  const sessions: IdleSession[] = [];
  try {
    await bounded(
      options.sessions,
      16,
      async (i) => {
        const { workerId, authToken } = credentials[i] as { workerId: string; authToken: string };
        const session = new IdleSession(i + 1, wsBase, workerId, authToken, options.heartbeatMs, '127.0.0.1', (error) => abort.abort(error));
        sessions.push(session);
        await session.connect();
      },
      abort.signal,
    );
    const cpu0 = processCpuSeconds(pid);
    const t0 = performance.now();
    await Promise.race([
      Promise.all(sessions.map((s) => s.nextAck())),
      new Promise((_, reject) => abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true })),
    ]);
    const cpu1 = processCpuSeconds(pid);
    const held = residentKb(pid);
    const out: SessionFigures = {
      held: sessions.length,
      rssBeforeMb: Math.round(before.rssKb / 102.4) / 10,
      rssHeldMb: Math.round(held.rssKb / 102.4) / 10,
      kbPerSession: Math.round(((held.rssKb - before.rssKb) / options.sessions) * 10) / 10,
      heartbeatMs: options.heartbeatMs,
    };
    if (cpu0 !== undefined && cpu1 !== undefined) out.cpuCores = Math.round(((cpu1 - cpu0) / ((performance.now() - t0) / 1000)) * 1000) / 1000;
    return out;
  } finally {
    for (const s of sessions) s.close();
  }
}

/** Every phase against one host; `say` reports progress. */
async function measureHost(host: HostName, round: number, options: HostsOptions, say: (line: string) => void): Promise<HostFigures> {
  const load0 = loadavg()[0] as number;
  say(`[${host}] starting…`);
  const running = await startHost(host, options.tmpDir, options.keep);
  const wsBase = running.url.replace(/^http/, 'ws');
  // One client for both hosts (node:http keep-alive): the same client work inside every sample.
  const api = createApiClient('http', running.url, running.adminToken);
  // On Cloudflare the dispatch and throughput phases run in the `default` pool: one object.
  const pooled = running.pools ? inPool(api, 'default') : api;
  const cpuSeconds = () => processCpuSeconds(running.pid);
  let workers: SimWorker[] = [];
  try {
    const tracker = new JobTracker();
    workers = await startWorkers(api, wsBase, running.pools ? 'default' : undefined, options.workers, tracker);
    const latency = await measureDispatchLatency(pooled, tracker, options.samples, options.warmup, 1, cpuSeconds);
    say(`[${host}] dispatch p50 ${latency.summary.p50.toFixed(3)} ms, p99 ${latency.summary.p99.toFixed(3)} ms`);
    const throughput = await measureThroughput(pooled, tracker, options.jobs, options.batch, options.warmup + options.samples + 1, 20_000, cpuSeconds);
    say(`[${host}] ${Math.round(throughput.jobsPerSec)} jobs/s (${options.jobs} jobs, ${options.workers} workers)`);
    if (tracker.unexpectedAcks > 0) throw new BenchError('unexpected_acks', `${host}: workers got ${tracker.unexpectedAcks} completeAcks for jobs the bench did not create`);
    for (const w of workers.splice(0)) w.close();
    const f = figures(options.workers, latency, throughput, undefined);

    // Sessions in a pool of their own on Cloudflare: one object holds them all.
    const sessions = await holdIdleSessions(running.pools ? inPool(api, 'idle') : api, wsBase, running.pid, options);
    say(`[${host}] ${sessions.held} idle sessions: RSS ${sessions.rssBeforeMb} → ${sessions.rssHeldMb} MiB (${sessions.kbPerSession} KB each), ${sessions.cpuCores ?? '?'} cores`);

    const out: HostFigures = {
      host,
      round,
      load1: [load0, 0],
      workers: f.workers,
      dispatchP50Ms: f.dispatchP50Ms,
      dispatchP99Ms: f.dispatchP99Ms,
      jobsPerSec: f.jobsPerSec,
      samples: f.samples,
      jobs: f.jobs,
      sessions,
    };
    if (f.studioCpuCores !== undefined) out.studioCpuCores = f.studioCpuCores;
    if (f.otherCpuCores !== undefined) out.otherCpuCores = f.otherCpuCores;
    if (running.pools) {
      out.sharded = [];
      let n = 10_000_000;
      for (const count of SHARD_COUNTS) {
        const perSec = await shardedThroughput(api, wsBase, running.pools.slice(0, count), options.workers / count, options.jobs, n, options.batch);
        n += options.jobs;
        out.sharded.push({ pools: count, jobsPerSec: Math.round(perSec) });
        say(`[${host}] ${count} pool${count > 1 ? 's' : ''}: ${Math.round(perSec)} jobs/s (${options.workers / count} workers each)`);
      }
    }
    out.load1[1] = loadavg()[0] as number;
    out.load1 = out.load1.map((l) => Math.round(l * 100) / 100) as [number, number];
    return out;
  } catch (error) {
    const tail = running.outputTail();
    if (error instanceof BenchError && tail) error.message += `\n--- ${host} output (last lines) ---\n${tail}`;
    throw error;
  } finally {
    for (const w of workers) w.close();
    api.close();
    await running.stop();
  }
}

/** A host's figures over every round: the best of each (the machine's other load only ever slows a round down). */
export interface HostBest {
  host: HostName;
  rounds: number;
  dispatchP50Ms: number;
  dispatchP99Ms: number;
  jobsPerSec: number;
  idleSessions: number;
  kbPerSession: number;
  rssHeldMb: number;
  sessionsCpuCores?: number;
  sharded?: Array<{ pools: number; jobsPerSec: number }>;
  /** Lowest and highest 1-minute load average seen during this host's rounds. */
  load1: [number, number];
}

export interface HostsResult {
  bench: 'hosts';
  date: string;
  cpus: number;
  tmpDir: string;
  workers: number;
  jobs: number;
  samples: number;
  best: HostBest[];
  rounds: HostFigures[];
}

export function bestOf(rounds: readonly HostFigures[]): HostBest[] {
  const out: HostBest[] = [];
  for (const host of HOSTS) {
    const mine = rounds.filter((r) => r.host === host);
    if (mine.length === 0) continue;
    const min = (f: (r: HostFigures) => number) => Math.min(...mine.map(f));
    const max = (f: (r: HostFigures) => number) => Math.max(...mine.map(f));
    const best: HostBest = {
      host,
      rounds: mine.length,
      dispatchP50Ms: min((r) => r.dispatchP50Ms),
      dispatchP99Ms: min((r) => r.dispatchP99Ms),
      jobsPerSec: max((r) => r.jobsPerSec),
      idleSessions: min((r) => r.sessions.held),
      kbPerSession: min((r) => r.sessions.kbPerSession),
      rssHeldMb: min((r) => r.sessions.rssHeldMb),
      load1: [min((r) => Math.min(...r.load1)), max((r) => Math.max(...r.load1))],
    };
    const cpu = mine.map((r) => r.sessions.cpuCores).filter((c): c is number => c !== undefined);
    if (cpu.length > 0) best.sessionsCpuCores = Math.min(...cpu);
    const first = mine[0]?.sharded;
    if (first) best.sharded = first.map(({ pools }) => ({ pools, jobsPerSec: max((r) => r.sharded?.find((x) => x.pools === pools)?.jobsPerSec ?? 0) }));
    out.push(best);
  }
  return out;
}

export async function runHosts(options: HostsOptions, say: (line: string) => void): Promise<HostsResult> {
  const rounds: HostFigures[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    // Alternate which host goes first, so a change in the machine's load hits both alike.
    const order = round % 2 === 1 ? options.hosts : [...options.hosts].reverse();
    for (const host of order) rounds.push(await measureHost(host, round, options, say));
  }
  return {
    bench: 'hosts',
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    tmpDir: options.tmpDir,
    workers: options.workers,
    jobs: options.jobs,
    samples: options.samples,
    best: bestOf(rounds),
    rounds,
  };
}

/** The best figures per host, then one line per host and round. */
export function hostsReport(r: HostsResult): string {
  const line = (h: { dispatchP50Ms: number; dispatchP99Ms: number; jobsPerSec: number; sharded?: Array<{ pools: number; jobsPerSec: number }> }, sessions: string, load: string) =>
    [`p50 ${h.dispatchP50Ms.toFixed(3)} ms`, `p99 ${h.dispatchP99Ms.toFixed(3)} ms`, `${h.jobsPerSec} jobs/s`, sessions, h.sharded ? `pools ${h.sharded.map((s) => `${s.pools}:${s.jobsPerSec}`).join(' ')} jobs/s` : '', `load ${load}`]
      .filter(Boolean)
      .join(' | ');
  return [
    `bench:hosts ${r.date}, ${r.cpus} cpus, data under ${r.tmpDir}; ${r.workers} workers, ${r.jobs} jobs, ${r.samples} latency samples`,
    `(workerd runs every object in one local process: more pools show the routing and one object's ceiling, not Cloudflare's scale-out)`,
    'best of the rounds:',
    ...r.best.map((b) => `  ${b.host.padEnd(10)} ${line(b, `${b.idleSessions} idle sessions in ${b.rssHeldMb} MiB (${b.kbPerSession} KB each, ${b.sessionsCpuCores ?? '?'} cores)`, `${b.load1[0]}–${b.load1[1]}`)}`),
    'rounds:',
    ...r.rounds.map(
      (h) =>
        `  ${h.host.padEnd(10)} #${h.round} ${line(h, `${h.sessions.held} idle sessions ${h.sessions.rssBeforeMb}→${h.sessions.rssHeldMb} MiB (${h.sessions.kbPerSession} KB each, ${h.sessions.cpuCores ?? '?'} cores)`, `${h.load1[0]}→${h.load1[1]}`)}`,
    ),
  ].join('\n');
}

if (import.meta.main) await benchMain('bench:hosts', parseHostsArgs, async (options, say) => {
  const result = await runHosts(options, say);
  return options.json ? JSON.stringify(result) : hostsReport(result);
});
