/**
 * `npm run bench:peers`: our studio against BullMQ + Redis in the same process tree and the same
 * minutes. Each round runs three things in a rotating order — our studio (`npm run bench`'s
 * measurement), BullMQ on a Redis with AOF `everysec`, BullMQ on a Redis without persistence — and
 * reports both sides and the ratios. See bench/README.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allowedCpus, cpuPlan, pinThisProcess, PIN_MODES, type PinMode } from './affinity.ts';
import { measureBullmq, type PeerOptions, type PeerRun } from './bullmq-peer.ts';
import { measureStudio, type BenchOptions } from './dispatch.ts';
import { BenchError } from './errors.ts';
import { benchMain, parseBenchFlags, wholeNumber as wholeNumberFlag } from './flags.ts';
import { findRedisServer, REDIS_INSTALL_HINT, startRedis, type RedisPersistence } from './redis-process.ts';
import type { BenchFigures } from './report.ts';
import { ms3 } from './stats.ts';

const USAGE = `usage: npm run bench:peers -- [--rounds R] [--workers N] [--jobs M] [--samples K] [--warmup W] [--batch B]
                                [--stall-seconds S] [--pin none|split|one] [--json]`;

export interface PeersOptions extends PeerOptions {
  rounds: number;
  /** Where the bench and the servers run (affinity.ts); `none` leaves it to the kernel. */
  pin: PinMode;
  json: boolean;
}

export function parsePeersArgs(argv: readonly string[]): PeersOptions {
  const values = parseBenchFlags(
    argv,
    {
      rounds: { type: 'string' },
      workers: { type: 'string' },
      jobs: { type: 'string' },
      samples: { type: 'string' },
      warmup: { type: 'string' },
      batch: { type: 'string' },
      'stall-seconds': { type: 'string' },
      pin: { type: 'string' },
    },
    USAGE,
  );
  const pin = values.pin ?? 'none';
  if (!(PIN_MODES as readonly string[]).includes(pin)) throw new BenchError('bad_flag', `--pin must be none, split or one (got "${pin}")\n${USAGE}`);
  const n = (name: string, raw: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => wholeNumberFlag(name, raw, fallback, min, max, USAGE);
  return {
    rounds: n('rounds', values.rounds, 3, 1, 100),
    workers: n('workers', values.workers, 100, 1, 10_000),
    jobs: n('jobs', values.jobs, 20_000, 1),
    samples: n('samples', values.samples, 500, 1),
    warmup: n('warmup', values.warmup, 100, 0),
    batch: n('batch', values.batch, 1000, 1, 1000),
    stallMs: n('stall-seconds', values['stall-seconds'], 15, 1) * 1000,
    pin: pin as PinMode,
    json: values.json,
  };
}

/** One contender's figures in one round. */
export interface Side {
  jobsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Cores the server (studio / redis-server) kept busy while draining. */
  serverCpuCores?: number;
  /** Cores this process (simulated workers / BullMQ consumers + producer) kept busy. */
  benchCpuCores: number;
  otherCpuCores?: number;
  serverPeakRssMb?: number;
  /** The CPUs the server was allowed to run on (the kernel's list), when the bench could read it. */
  serverCpus?: string;
}

export interface Round {
  round: number;
  order: string[];
  ours: Side;
  bullmqAof: Side;
  bullmqNone: Side;
  throughputRatio: number;
  p50Ratio: number;
  p99Ratio: number;
}

const r2 = (v: number) => Math.round(v * 100) / 100;
const r1 = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 10) / 10);

function oursSide(f: BenchFigures, serverCpus: string | undefined): Side {
  return {
    jobsPerSec: f.jobsPerSec,
    p50Ms: f.dispatchP50Ms,
    p99Ms: f.dispatchP99Ms,
    serverCpuCores: f.studioCpuCores,
    benchCpuCores: f.benchCpuCores,
    otherCpuCores: f.otherCpuCores,
    serverPeakRssMb: f.studioPeakRssMb,
    serverCpus,
  };
}

function peerSide(run: PeerRun, serverCpus: string | undefined): Side {
  return {
    jobsPerSec: Math.round(run.jobsPerSec),
    p50Ms: ms3(run.latency.p50),
    p99Ms: ms3(run.latency.p99),
    serverCpuCores: run.cpu.studio === undefined ? undefined : r2(run.cpu.studio),
    benchCpuCores: r2(run.cpu.bench),
    otherCpuCores: run.cpu.other === undefined ? undefined : r2(run.cpu.other),
    serverPeakRssMb: r1(run.serverPeakRssMb),
    serverCpus,
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

type Contender = 'ours' | RedisPersistence;
const CONTENDERS: readonly Contender[] = ['ours', 'aof-everysec', 'none'];

export async function runPeers(options: PeersOptions, say: (line: string) => void): Promise<Round[]> {
  // Before anything starts, so every thread of this process is on the bench's CPUs.
  const plan = cpuPlan(options.pin);
  if (plan) pinThisProcess(plan.bench);
  const studioOptions: BenchOptions = {
    workers: options.workers,
    jobs: options.jobs,
    samples: options.samples,
    warmup: options.warmup,
    batch: options.batch,
    client: 'raw',
    stallMs: options.stallMs,
    preload: 0,
    serverCpus: plan?.servers,
    json: true,
    keep: false,
  };
  // Say it before the first studio run, not minutes later.
  if (!findRedisServer()) throw new BenchError('redis_missing', REDIS_INSTALL_HINT);
  const rounds: Round[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    // Rotate who goes first, so no contender always runs on the warmest (or the most tired) machine.
    const order = CONTENDERS.map((_, i) => CONTENDERS[(i + round - 1) % CONTENDERS.length] as Contender);
    const sides: Partial<Record<Contender, Side>> = {};
    for (const contender of order) {
      say(`round ${round}/${options.rounds}: ${contender === 'ours' ? 'our studio' : `BullMQ, Redis ${contender}`}…`);
      if (contender === 'ours') {
        const run = await measureStudio(studioOptions, () => {});
        sides.ours = oursSide(run.figures, run.studioCpus);
      } else {
        const redis = await startRedis(contender, { cpus: plan?.servers });
        try {
          sides[contender] = peerSide(await measureBullmq(redis, options), allowedCpus(redis.pid));
        } catch (error) {
          if (error instanceof BenchError) error.message += `\n--- redis-server output ---\n${redis.outputTail()}`;
          throw error;
        } finally {
          await redis.stop();
        }
      }
    }
    const ours = sides.ours as Side;
    const aof = sides['aof-everysec'] as Side;
    rounds.push({
      round,
      order,
      ours,
      bullmqAof: aof,
      bullmqNone: sides.none as Side,
      throughputRatio: r2(ours.jobsPerSec / aof.jobsPerSec),
      p50Ratio: r2(ours.p50Ms / aof.p50Ms),
      p99Ratio: r2(ours.p99Ms / aof.p99Ms),
    });
  }
  return rounds;
}

/** The JSON line: the three ratios (median over the rounds) first, then the medians, then every round. */
export function peersJson(options: PeersOptions, rounds: readonly Round[]): string {
  const med = (pick: (r: Round) => number) => median(rounds.map(pick));
  return JSON.stringify({
    throughputRatio: r2(med((r) => r.throughputRatio)),
    p50Ratio: r2(med((r) => r.p50Ratio)),
    p99Ratio: r2(med((r) => r.p99Ratio)),
    rounds: rounds.length,
    workers: options.workers,
    jobs: options.jobs,
    samples: options.samples,
    pin: options.pin,
    benchCpus: allowedCpus(process.pid),
    oursJobsPerSec: Math.round(med((r) => r.ours.jobsPerSec)),
    bullmqAofJobsPerSec: Math.round(med((r) => r.bullmqAof.jobsPerSec)),
    bullmqNoneJobsPerSec: Math.round(med((r) => r.bullmqNone.jobsPerSec)),
    oursP50Ms: ms3(med((r) => r.ours.p50Ms)),
    bullmqAofP50Ms: ms3(med((r) => r.bullmqAof.p50Ms)),
    oursP99Ms: ms3(med((r) => r.ours.p99Ms)),
    bullmqAofP99Ms: ms3(med((r) => r.bullmqAof.p99Ms)),
    runs: rounds,
  });
}

/** The installed version of a dev dependency, for the report. */
function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(import.meta.dirname, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

const int = (v: number) => Math.round(v).toLocaleString('en-US');
const cores = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(2));

/** Where the processes ran, in words. */
function placement(pin: PinMode, rounds: readonly Round[]): string {
  if (pin === 'none') return 'CPUs: not pinned, the kernel places every process (--pin split or --pin one fixes where they run)';
  const servers = [...new Set(rounds.flatMap((r) => [r.ours, r.bullmqAof, r.bullmqNone].map((side) => side.serverCpus ?? '?')))].join(', ');
  return `CPUs (--pin ${pin}): this process on ${allowedCpus(process.pid) ?? '?'}; the studio and redis-server on ${servers}`;
}

export function peersReport(options: PeersOptions, rounds: readonly Round[]): string {
  const header = ['round', 'ours jobs/s', 'BullMQ none', 'BullMQ AOF', 'ours p50 / p99 ms', 'AOF p50 / p99 ms', 'jobs/s ratio', 'p50 ratio', 'p99 ratio', 'cores: studio / redis(AOF)', 'other'];
  const rows = rounds.map((r) => [
    String(r.round),
    int(r.ours.jobsPerSec),
    int(r.bullmqNone.jobsPerSec),
    int(r.bullmqAof.jobsPerSec),
    `${r.ours.p50Ms.toFixed(3)} / ${r.ours.p99Ms.toFixed(3)}`,
    `${r.bullmqAof.p50Ms.toFixed(3)} / ${r.bullmqAof.p99Ms.toFixed(3)}`,
    r.throughputRatio.toFixed(2),
    r.p50Ratio.toFixed(2),
    r.p99Ratio.toFixed(2),
    `${cores(r.ours.serverCpuCores)} / ${cores(r.bullmqAof.serverCpuCores)}`,
    cores(Math.max(r.ours.otherCpuCores ?? 0, r.bullmqAof.otherCpuCores ?? 0, r.bullmqNone.otherCpuCores ?? 0)),
  ]);
  const summary = JSON.parse(peersJson(options, rounds)) as Record<string, number>;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [
    `peers bench: ${options.workers} consumers, ${options.jobs} no-op jobs in batches of ${options.batch}, ${options.samples} latency samples (after ${options.warmup} warm-up), ${rounds.length} rounds in rotating order`,
    `  ours: the studio, every state change committed to SQLite before it is acknowledged`,
    `  BullMQ ${packageVersion('bullmq')} + ioredis ${packageVersion('ioredis')} on a private redis-server (AOF appendfsync everysec, and without persistence); ratios are ours / AOF`,
    `  ${placement(options.pin, rounds)}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `median ratios: throughput ${summary.throughputRatio} (>= 1.0 is ahead), p50 ${summary.p50Ratio} (<= 1.0 is ahead), p99 ${summary.p99Ratio}`,
  ].join('\n');
}

if (import.meta.main) {
  await benchMain(
    'bench:peers',
    parsePeersArgs,
    async (options, say) => {
      const rounds = await runPeers(options, say);
      return options.json ? peersJson(options, rounds) : peersReport(options, rounds);
    },
    { redis_missing: 3, taskset_missing: 3, pin_impossible: 2 },
  );
}
