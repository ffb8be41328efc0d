/**
 * The peer to beat: BullMQ on ioredis against a private redis-server, in the shape of `npm run bench`
 * (N concurrent consumers with a 0 ms processor, one-at-a-time latency samples, then M jobs added
 * in batches while the consumers drain them). See bench/README.md (`npm run bench:peers`).
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { BenchError } from './errors.ts';
import { JobTracker } from './job-tracker.ts';
import { startCpuMeter, type CpuShares } from './machine-cpu.ts';
import { benchJob } from './phases.ts';
import type { RedisProcess } from './redis-process.ts';
import { summarize, type LatencySummary } from './stats.ts';

const STEP_TIMEOUT_MS = 10_000;

export interface PeerOptions {
  workers: number;
  jobs: number;
  samples: number;
  warmup: number;
  batch: number;
  stallMs: number;
}

export interface PeerRun {
  latency: LatencySummary;
  jobsPerSec: number;
  seconds: number;
  /** Cores redis-server ("studio"), this process (the consumers and the producer) and the rest used while draining. */
  cpu: CpuShares;
  serverPeakRssMb?: number;
}

/**
 * One BullMQ run against this Redis: a Worker with `concurrency = workers` in this process (its
 * consumers take jobs as our simulated workers take offers), a Queue adding the same job bodies as
 * `npm run bench`. Jobs are kept after completion (BullMQ's default), as the studio keeps its rows.
 */
export async function measureBullmq(redis: RedisProcess, options: PeerOptions): Promise<PeerRun> {
  const name = `bench-${randomBytes(4).toString('hex')}`;
  const connection = { host: redis.host, port: redis.port, maxRetriesPerRequest: null };
  const queueConnection = new Redis(connection);
  const workerConnection = new Redis(connection);
  const tracker = new JobTracker();
  const queue = new Queue(name, { connection: queueConnection });
  const worker = new Worker(
    name,
    async (job: Job) => {
      tracker.offer(job.id as string, performance.now());
    },
    { connection: workerConnection, concurrency: options.workers },
  );
  worker.on('completed', (job: Job) => tracker.completed(job.id as string, performance.now()));
  worker.on('failed', (job: Job | undefined, error: Error) => tracker.fail(new BenchError('peer_job_failed', `BullMQ job ${job?.id} failed: ${error.message}`)));
  worker.on('error', (error: Error) => tracker.fail(new BenchError('peer_error', `BullMQ worker error: ${error.message}`)));
  try {
    await worker.waitUntilReady();
    await queue.waitUntilReady();
    // Latency: one job at a time, add → processor called, the next only after this one completed.
    const latencies: number[] = [];
    for (let i = 0; i < options.warmup + options.samples; i++) {
      const data = benchJob(i + 1);
      const offered = tracker.nextOffer(STEP_TIMEOUT_MS);
      const t0 = performance.now();
      const job = await queue.add('bench', data);
      const offer = await offered;
      if (offer.jobId !== job.id) throw new BenchError('wrong_offer', `added BullMQ job ${job.id} but a consumer got ${offer.jobId}`);
      if (i >= options.warmup) latencies.push(offer.at - t0);
      tracker.expect([job.id as string]);
      await tracker.completion(job.id as string, STEP_TIMEOUT_MS);
    }
    // Throughput: batches with addBulk, each sent once the previous one is answered.
    const batches: Array<Array<{ name: string; data: ReturnType<typeof benchJob> }>> = [];
    const first = options.warmup + options.samples + 1;
    for (let start = 0; start < options.jobs; start += options.batch) {
      const batch = [];
      for (let n = start; n < Math.min(start + options.batch, options.jobs); n++) batch.push({ name: 'bench', data: benchJob(first + n) });
      batches.push(batch);
    }
    const meter = startCpuMeter(redis.cpuSeconds);
    const t0 = performance.now();
    for (const batch of batches) {
      tracker.throwIfFailed();
      const added = await queue.addBulk(batch);
      tracker.expect(added.map((job) => job.id as string));
    }
    await tracker.drained(options.stallMs);
    const cpu = meter.stop();
    if (tracker.unexpectedAcks > 0) throw new BenchError('unexpected_acks', `BullMQ completed ${tracker.unexpectedAcks} jobs the bench did not add`);
    const seconds = (tracker.lastCompletedAt - t0) / 1000;
    return { latency: summarize(latencies), jobsPerSec: options.jobs / seconds, seconds, cpu, serverPeakRssMb: redis.peakRssMb() };
  } finally {
    await worker.close(true).catch(() => {});
    await queue.close().catch(() => {});
    queueConnection.disconnect();
    workerConnection.disconnect();
  }
}
