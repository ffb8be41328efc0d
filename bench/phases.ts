import type { CreateJobInput, JobView } from '@studio-worker/protocol';
import type { ApiClient } from './api-client.ts';
import { BenchError } from './errors.ts';
import { startCpuMeter, type CpuShares } from './machine-cpu.ts';
import type { JobTracker } from './job-tracker.ts';
import { summarize, type LatencySummary } from './stats.ts';

/** Waits longer than this mean the studio lost a job (nothing here takes more than milliseconds). */
const STEP_TIMEOUT_MS = 10_000;

/** A no-op job for the synthetic LLM: the smallest task the studio accepts. */
export function benchJob(n: number): CreateJobInput {
  return { model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: `bench ${n}` }], maxTokens: 1 } };
}

export interface LatencyResult {
  summary: LatencySummary;
  warmup: number;
  cpu: CpuShares;
}

/**
 * One job at a time with every worker idle: t0 just before the create request goes out, t1 when
 * the offer frame reaches a simulated worker (one process, one clock). The next job is created
 * only after this one completed, so every sample starts from an idle, quiet studio.
 */
export async function measureDispatchLatency(
  api: ApiClient,
  tracker: JobTracker,
  samples: number,
  warmup: number,
  firstN: number,
  studioCpuSeconds: () => number | undefined,
): Promise<LatencyResult> {
  const latencies: number[] = [];
  let meter: ReturnType<typeof startCpuMeter> | undefined;
  for (let i = 0; i < warmup + samples; i++) {
    if (i === warmup) meter = startCpuMeter(studioCpuSeconds);
    const body = JSON.stringify(benchJob(firstN + i));
    const offered = tracker.nextOffer(STEP_TIMEOUT_MS);
    const t0 = performance.now();
    const created = api.post<JobView>('/jobs', body);
    const [offer, job] = await Promise.all([offered, created]);
    if (offer.jobId !== job.id) {
      throw new BenchError('wrong_offer', `created job ${job.id} but a worker was offered ${offer.jobId}; another job was queued during the latency phase`);
    }
    if (i >= warmup) latencies.push(offer.at - t0);
    tracker.expect([job.id]);
    await tracker.completion(job.id, STEP_TIMEOUT_MS);
  }
  return { summary: summarize(latencies), warmup, cpu: (meter as NonNullable<typeof meter>).stop() };
}

export interface ThroughputResult {
  jobs: number;
  /** First batch request sent → last completeAck received. */
  seconds: number;
  jobsPerSec: number;
  /** First batch request sent → last batch answered. */
  submitSeconds: number;
  submitPerSec: number;
  /** Cores each party kept busy during the phase; a high `other` means the figures were disturbed. */
  cpu: CpuShares;
}

/**
 * M jobs in batches, each batch sent as soon as the previous one is answered, while the workers
 * drain the queue. Bodies are serialized before the clock starts.
 */
export async function measureThroughput(
  api: ApiClient,
  tracker: JobTracker,
  jobs: number,
  batchSize: number,
  firstN: number,
  stallMs: number,
  studioCpuSeconds: () => number | undefined,
): Promise<ThroughputResult> {
  const bodies: string[] = [];
  for (let start = 0; start < jobs; start += batchSize) {
    const batch: CreateJobInput[] = [];
    for (let n = start; n < Math.min(start + batchSize, jobs); n++) batch.push(benchJob(firstN + n));
    bodies.push(JSON.stringify({ jobs: batch }));
  }
  const meter = startCpuMeter(studioCpuSeconds);
  const t0 = performance.now();
  let created = 0;
  for (const body of bodies) {
    tracker.throwIfFailed();
    const answer = await api.post<{ jobs: JobView[] }>('/jobs/batch', body);
    tracker.expect(answer.jobs.map((job) => job.id));
    created += answer.jobs.length;
  }
  const submitted = performance.now();
  if (created !== jobs) throw new BenchError('api_error', `asked for ${jobs} jobs, the studio created ${created}`);
  await tracker.drained(stallMs);
  const cpu = meter.stop();
  const seconds = (tracker.lastCompletedAt - t0) / 1000;
  const submitSeconds = (submitted - t0) / 1000;
  return {
    jobs,
    seconds,
    jobsPerSec: jobs / seconds,
    submitSeconds,
    submitPerSec: jobs / submitSeconds,
    cpu,
  };
}

/**
 * What the dashboard asks for: the newest jobs (with the counts), each status filter, an older page.
 * Each query runs `rounds` times; `medianMs` is the slowest query's median, `maxMs` the slowest single answer.
 */
export async function measureDashboard(api: ApiClient, rounds = 5): Promise<{ medianMs: number; maxMs: number; slowest: string }> {
  const first = await api.get<{ jobs: JobView[]; nextBefore?: number }>('/jobs?limit=50');
  const paths = ['/jobs?limit=50', ...['queued', 'claimed', 'running', 'done', 'failed', 'cancelled'].map((s) => `/jobs?limit=50&status=${s}`)];
  // An older page from the middle of the table (`before` is a seq, 1 or more).
  if (first.nextBefore !== undefined && first.nextBefore > 1) {
    const older = Math.max(1, Math.floor(first.nextBefore / 2));
    paths.push(`/jobs?limit=50&before=${older}`, `/jobs?limit=50&status=done&before=${older}`);
  }
  const times = new Map<string, number[]>(paths.map((p) => [p, []]));
  for (let round = 0; round < rounds; round++) {
    for (const path of paths) {
      const t0 = performance.now();
      await api.get(path);
      times.get(path)?.push(performance.now() - t0);
    }
  }
  let medianMs = 0;
  let maxMs = 0;
  let slowest = '';
  for (const [path, list] of times) {
    const s = summarize(list);
    if (s.p50 > medianMs) {
      medianMs = s.p50;
      slowest = path;
    }
    maxMs = Math.max(maxMs, s.max);
  }
  return { medianMs, maxMs, slowest };
}
