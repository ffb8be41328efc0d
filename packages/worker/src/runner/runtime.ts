import { httpApiBase, type InFlightJob, type WorkerCapabilities } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { ConfigStore } from '../config/index.ts';
import { inputUrlPolicyFor } from '../platform/url-policy.ts';
import { ResultDelivery } from './delivery.ts';
import { JobRunner, type EngineResolver, type JobGateLike, type JobRunnerOptions } from './jobs.ts';
import { LinkHolder } from '../session/link.ts';
import type { Outbox } from './outbox.ts';
import type { SessionHost } from '../session/session.ts';
import type { LogShipQueue } from '../session/ship-queue.ts';

export interface WorkerRuntimeOptions {
  store: ConfigStore;
  outbox: Outbox;
  gate: JobGateLike;
  router: EngineResolver;
  shipQueue: LogShipQueue;
  userAgent: string;
  /** A fresh capability snapshot (config, engines, VRAM, pause state). */
  capabilities: () => WorkerCapabilities;
  /** Why offers are held back right now, or null. */
  holdBack: () => string | null;
  /** A logger for one module (its name becomes the shipped entries' category). */
  logger: (module: string) => Logger;
  /** Running jobs or the outbox changed. */
  onChange?: () => void;
  /** A job's engine part ended (for the failure cooldown). */
  onEngineOutcome?: JobRunnerOptions['onEngineOutcome'];
  /** Where per-job scratch dirs go. */
  scratchRoot?: string;
  /** Model files for a claim (the daemon's ModelProvisioner). */
  provision?: JobRunnerOptions['provision'];
  onAccept?: JobRunnerOptions['onAccept'];
  /** Observes accepted studio jobs (the daemon's jobs list and metrics). */
  onJobEvent?: JobRunnerOptions['onJobEvent'];
}

/**
 * Everything that outlives a single connection: the outbox, result delivery, running jobs and the
 * current link. Sessions come and go; a job keeps running across them and its result is delivered by
 * whichever session is up when it is ready.
 */
export class WorkerRuntime {
  readonly links = new LinkHolder();
  readonly delivery: ResultDelivery;
  readonly jobs: JobRunner;
  readonly #options: WorkerRuntimeOptions;

  constructor(options: WorkerRuntimeOptions) {
    this.#options = options;
    this.delivery = new ResultDelivery({
      outbox: options.outbox,
      links: this.links,
      log: options.logger('delivery'),
      timings: () => options.store.current.advanced,
      credentials: () => {
        const config = options.store.current;
        if (!config.workerId || !config.authToken) return null;
        return { client: { apiBase: httpApiBase(config.apiBaseUrl), userAgent: options.userAgent }, workerId: config.workerId, authToken: config.authToken };
      },
    });
    this.jobs = new JobRunner({
      gate: options.gate,
      router: options.router,
      outbox: options.outbox,
      delivery: this.delivery,
      links: this.links,
      log: options.logger('job'),
      holdBack: options.holdBack,
      onChange: options.onChange,
      // Read per offer, so the value in config.toml is the one that counts.
      prefetch: () => options.store.current.prefetch,
      onEngineOutcome: options.onEngineOutcome,
      scratchRoot: options.scratchRoot,
      provision: options.provision,
      onAccept: options.onAccept,
      onJobEvent: options.onJobEvent,
      // Read per job, so allowed_input_origins and the engine servers in config.toml are the ones that count.
      inputUrls: () => inputUrlPolicyFor(options.store.current),
    });
    options.outbox.onChange(() => options.onChange?.());
  }

  /** Running jobs, then results waiting for acknowledgement (a job is listed once). */
  inFlight(): InFlightJob[] {
    const running = this.jobs.inFlight();
    const seen = new Set(running.map((job) => job.jobId));
    return [...running, ...this.delivery.finishedJobs().filter((job) => !seen.has(job.jobId))];
  }

  /** What a session with these credentials needs from the worker. */
  hostFor(workerId: string, authToken: string): SessionHost {
    const options = this.#options;
    const runtime = this;
    return {
      workerId,
      authToken,
      log: options.logger('session'),
      shipQueue: options.shipQueue,
      timings: () => options.store.current.advanced,
      capabilities: options.capabilities,
      inFlight: () => runtime.inFlight(),
      currentJobId: () => runtime.jobs.currentJobIds()[0],
      linkUp: (link) => runtime.links.up(link),
      linkDown: (link) => runtime.links.down(link),
      onOffer: (claim, link) => runtime.jobs.handleOffer(claim, link),
      onCancel: (frame) => void runtime.jobs.cancel(frame.jobId, frame.attempt, frame.reason),
      onCompleteAck: (jobId, attempt) => void runtime.delivery.acknowledge('json', jobId, attempt),
      onFailAck: (jobId, attempt) => void runtime.delivery.acknowledge('fail', jobId, attempt),
      onStaleAttempt: (jobId, attempt) => void runtime.delivery.dropStale(jobId, attempt),
    };
  }
}
