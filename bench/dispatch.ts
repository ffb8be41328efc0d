/**
 * `npm run bench`: dispatch latency and throughput of the embedded studio against N simulated
 * workers with a 0 ms engine. See bench/README.md for what the figures mean.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { StudioClient } from '@studio-worker/client';
import { allowedCpus } from './affinity.ts';
import { createApiClient, type ClientKind } from './api-client.ts';
import { BenchError } from './errors.ts';
import { benchMain, parseBenchFlags, wholeNumber as wholeNumberFlag } from './flags.ts';
import { JobTracker } from './job-tracker.ts';
import { measureDashboard, measureDispatchLatency, measureThroughput, type LatencyResult, type ThroughputResult } from './phases.ts';
import { preloadJobs } from './preload.ts';
import { figures, humanReport, jsonLine, type BenchFigures } from './report.ts';
import { SimWorker } from './sim-worker.ts';
import { startStudioProcess, type StudioProcess } from './studio-process.ts';

const USAGE = `usage: npm run bench -- [--workers N] [--jobs M] [--samples K] [--warmup W] [--batch B]
                          [--client raw|http|fetch] [--stall-seconds S] [--preload N] [--cpu-prof DIR] [--json] [--keep]`;

export interface BenchOptions {
  workers: number;
  jobs: number;
  samples: number;
  warmup: number;
  batch: number;
  client: ClientKind;
  stallMs: number;
  /** Jobs written into the table before the studio starts (half done, half queued). */
  preload: number;
  cpuProfDir?: string;
  /** Run the studio on these CPUs only (bench:peers --pin; affinity.ts). */
  serverCpus?: string;
  json: boolean;
  keep: boolean;
}

function wholeNumber(name: string, raw: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  return wholeNumberFlag(name, raw, fallback, min, max, USAGE);
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const values = parseBenchFlags(
    argv,
    {
      workers: { type: 'string' },
      jobs: { type: 'string' },
      samples: { type: 'string' },
      warmup: { type: 'string' },
      batch: { type: 'string' },
      client: { type: 'string' },
      'stall-seconds': { type: 'string' },
      preload: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
    USAGE,
  );
  const client = values.client ?? 'raw';
  if (client !== 'raw' && client !== 'http' && client !== 'fetch') throw new BenchError('bad_flag', `--client must be raw, http or fetch (got "${client}")`);
  return {
    workers: wholeNumber('workers', values.workers, 100, 1, 10_000),
    jobs: wholeNumber('jobs', values.jobs, 20_000, 1),
    samples: wholeNumber('samples', values.samples, 2000, 1),
    warmup: wholeNumber('warmup', values.warmup, 200, 0),
    batch: wholeNumber('batch', values.batch, 1000, 1, 1000),
    client,
    stallMs: wholeNumber('stall-seconds', values['stall-seconds'], 15, 1) * 1000,
    preload: wholeNumber('preload', values.preload, 0, 0, 100_000_000),
    cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    json: values.json,
    keep: values.keep,
  };
}

/** Create and connect the simulated workers, a few at a time (each costs a SQL write and a hash). */
async function startWorkers(api: StudioClient, studio: StudioProcess, tracker: JobTracker, count: number): Promise<SimWorker[]> {
  const wsBase = studio.url.replace(/^http/, 'ws');
  const workers: SimWorker[] = [];
  const CONCURRENCY = 10;
  for (let start = 0; start < count; start += CONCURRENCY) {
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, count - start) }, async (_, i) => {
        const { workerId, authToken } = await api.createWorker(`bench-${start + i + 1}`);
        const worker = new SimWorker({ wsBase, workerId, authToken, events: tracker });
        workers.push(worker);
        await worker.connect();
      }),
    );
  }
  const health = await api.health();
  if (health.workersOnline !== count) {
    throw new BenchError('worker_connect_failed', `${count} workers connected but the studio counts ${health.workersOnline} online`);
  }
  return workers;
}

/** What one studio run measured: the figures and the two phases they come from. */
export interface StudioRun {
  figures: BenchFigures;
  latency: LatencyResult;
  throughput: ThroughputResult;
  /** The CPUs the studio was allowed to run on, as the kernel listed them after it started. */
  studioCpus: string | undefined;
}

/** The bench's report: one JSON line, or the human table. */
export async function runBench(options: BenchOptions, say: (line: string) => void): Promise<string> {
  const run = await measureStudio(options, say);
  return options.json ? jsonLine(run.figures) : humanReport(run.figures, run.latency, run.throughput, options.client);
}

/** Start a studio, connect the workers, run both phases, stop it. */
export async function measureStudio(options: BenchOptions, say: (line: string) => void): Promise<StudioRun> {
  if (options.cpuProfDir) mkdirSync(options.cpuProfDir, { recursive: true });
  say(`starting the studio…`);
  let preloaded = '';
  const studio = await startStudioProcess({
    keepDataDir: options.keep,
    cpuProfDir: options.cpuProfDir,
    cpus: options.serverCpus,
    prepareDataDir:
      options.preload > 0
        ? (dir) => {
            const t0 = performance.now();
            const { done, queued } = preloadJobs(dir, options.preload);
            preloaded = `preloaded ${done} done + ${queued} queued jobs in ${((performance.now() - t0) / 1000).toFixed(1)} s; `;
          }
        : undefined,
  });
  const studioCpus = allowedCpus(studio.pid);
  const tracker = new JobTracker();
  const api = createApiClient(options.client, studio.url, studio.adminToken);
  let workers: SimWorker[] = [];
  // First signal: stop the run and clean up. Second: leave now (the exit hook kills the studio).
  let signals = 0;
  const interrupted = (signal: string) => {
    if (++signals > 1) process.exit(130);
    tracker.fail(new BenchError('interrupted', `interrupted (${signal}); stopping the studio`));
  };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  try {
    say(`${preloaded}studio pid ${studio.pid} on ${studio.url}, data in ${studio.dataDir}; connecting ${options.workers} workers…`);
    // Setup goes through the typed client; the timed phases below use the bench's own (api-client.ts says why).
    workers = await startWorkers(new StudioClient({ url: studio.url, token: studio.adminToken }), studio, tracker, options.workers);
    say(`latency phase: ${options.warmup} warm-up + ${options.samples} samples…`);
    const latency = await measureDispatchLatency(api, tracker, options.samples, options.warmup, 1, studio.cpuSeconds);
    say(`throughput phase: ${options.jobs} jobs in batches of ${options.batch}…`);
    const throughput = await measureThroughput(api, tracker, options.jobs, options.batch, options.warmup + options.samples + 1, options.stallMs, studio.cpuSeconds);
    say('dashboard queries…');
    const dashboard = await measureDashboard(api);
    if (tracker.unexpectedAcks > 0) {
      throw new BenchError('unexpected_acks', `workers got ${tracker.unexpectedAcks} completeAcks for jobs the bench did not create (or twice for one job)`);
    }
    if (tracker.studioErrors.length > 0) say(`the studio sent error frames:\n  ${tracker.studioErrors.join('\n  ')}`);
    return { figures: figures(options.workers, latency, throughput, studio.peakRssMb(), options.preload, dashboard), latency, throughput, studioCpus };
  } catch (error) {
    if (error instanceof BenchError && error.code !== 'interrupted') {
      const output = studio.outputTail();
      if (output) error.message += `\n--- studio output (last lines) ---\n${output}`;
    }
    throw error;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    for (const worker of workers) worker.close();
    api.close();
    await studio.stop();
    // On stderr even with --json: these name where the asked-for files are.
    if (options.keep) process.stderr.write(`kept the studio data in ${studio.dataDir}\n`);
    if (options.cpuProfDir) process.stderr.write(`studio CPU profile written to ${options.cpuProfDir}\n`);
  }
}

if (import.meta.main) await benchMain('bench', parseBenchArgs, runBench, { interrupted: 130 });
