import type { Logger } from '@studio-worker/log';
import type { Dispatcher } from './dispatcher.ts';
import type { Ports } from './ports.ts';
import type { Stores } from './stores.ts';
import type { Retention } from './retention.ts';
import { DEFAULT_DELIVERY_POLICY, type DeliveryPolicy, type Webhooks } from './webhooks.ts';

export interface HousekeepingOptions {
  /** Webhook delivery retries (the Node host reads STUDIO_WEBHOOK_RETRY_MS into baseDelayMs). */
  delivery: DeliveryPolicy;
  /** Worker log lines are cut back to `logLinesPerWorker` this often (while there are any). */
  pruneLogsEveryMs: number;
  /**
   * Results older than `maxAgeMs` are deleted every `everyMs` (undefined: kept forever). The core
   * marks them expired in SQL; `removeFiles` gets the result files to delete, and must make the SQL
   * change durable before it deletes them (Node: commit first; a crash in between then leaves an
   * unreferenced file, never a job pointing at a missing one).
   */
  retention?: { maxAgeMs: number; everyMs: number; removeFiles(files: readonly string[]): void | Promise<void> };
  /** The fetch webhooks go out through (tests, a host's own). */
  fetch?: typeof fetch;
}

export const DEFAULT_HOUSEKEEPING_OPTIONS: HousekeepingOptions = {
  delivery: DEFAULT_DELIVERY_POLICY,
  pruneLogsEveryMs: 10 * 60_000,
};

/** When each periodic chore last ran, in `meta`, so a host that loses its memory keeps the rhythm. */
const LAST_RUN_KEY = { logs: 'housekeeping:logs_pruned_at', retention: 'housekeeping:retention_at' } as const;
type Chore = keyof typeof LAST_RUN_KEY;

/**
 * Everything periodic, run when due, answering when it next needs to run: the lease sweep, offer
 * take-backs, hello and heartbeat deadlines and retry backoff (`dispatcher.tick`), webhook
 * deliveries, log pruning and retention. The host owns the timer: Node sets a timeout for the
 * answer, a Durable Object `ctx.storage.setAlarm(answer)`; after each request or message it asks
 * `nextWakeAt()` again, since a new claim or a new delivery may move the next deadline earlier.
 */
export class Housekeeping {
  private readonly ports: Ports;
  private readonly stores: Stores;
  private readonly dispatcher: Dispatcher;
  private readonly webhooks: Webhooks;
  private readonly retention: Retention;
  private readonly opts: HousekeepingOptions;
  private readonly log: Logger;
  private readonly lastRun = new Map<Chore, number>();
  private running: Promise<number | undefined> | undefined;

  constructor(ports: Ports, stores: Stores, dispatcher: Dispatcher, webhooks: Webhooks, retention: Retention, opts: HousekeepingOptions, log: Logger) {
    this.ports = ports;
    this.stores = stores;
    this.dispatcher = dispatcher;
    this.webhooks = webhooks;
    this.retention = retention;
    this.opts = opts;
    this.log = log;
  }

  /**
   * Run what is due at `now` and answer when to run next (epoch ms; undefined: nothing pending).
   * One run at a time: a call while one is in flight (a slow webhook endpoint) answers that run.
   */
  runDue(now = this.ports.clock.now()): Promise<number | undefined> {
    this.running ??= this.run(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** When `runDue` next has something to do; never earlier than `now`. */
  nextWakeAt(now = this.ports.clock.now()): number | undefined {
    const times = [this.dispatcher.nextWakeAt(now), this.webhookDue(), this.choreDue('logs'), this.choreDue('retention')];
    let next: number | undefined;
    for (const t of times) if (t !== undefined && (next === undefined || t < next)) next = t;
    return next === undefined ? undefined : Math.max(next, now);
  }

  private async run(now: number): Promise<number | undefined> {
    this.dispatcher.tick();
    const logsDue = this.choreDue('logs');
    if (logsDue !== undefined && logsDue <= now) {
      this.dispatcher.pruneLogs();
      this.ran('logs', now);
    }
    const retention = this.opts.retention;
    const retentionDue = this.choreDue('retention');
    if (retention && retentionDue !== undefined && retentionDue <= now) {
      const report = this.retention.collect(retention.maxAgeMs);
      this.ran('retention', now);
      try {
        if (report.files.length > 0) await retention.removeFiles(report.files);
        if (report.expiredJobs || report.prunedEvents) this.log.info({ op: 'gc', expiredJobs: report.expiredJobs, freedBytes: report.freedBytes, prunedEvents: report.prunedEvents }, 'old results deleted');
      } catch (error) {
        // The jobs are marked expired already; a file left behind is only disk space.
        this.log.error({ op: 'gc', err: (error as Error).message, files: report.files.length }, 'could not delete expired result files');
      }
    }
    const webhookDue = this.webhookDue();
    if (webhookDue !== undefined && webhookDue <= now) {
      try {
        const tried = await this.webhooks.deliverDue(this.opts.delivery, this.opts.fetch);
        if (tried > 0) this.log.debug({ op: 'webhook', tried }, 'webhook deliveries sent');
      } catch (error) {
        this.log.error({ op: 'webhook', err: (error as Error).message }, 'webhook delivery round failed');
      }
    }
    return this.nextWakeAt(this.ports.clock.now());
  }

  private webhookDue(): number | undefined {
    return this.stores.events.firstDueDelivery();
  }

  /** When a chore is next due: never run, due now; undefined when it has nothing to do. */
  private choreDue(chore: Chore): number | undefined {
    if (chore === 'retention' && !this.opts.retention) return undefined;
    // Pruning only matters while there are log lines (they come only with connected workers).
    if (chore === 'logs' && !this.stores.workerLogs.any()) return undefined;
    const every = chore === 'logs' ? this.opts.pruneLogsEveryMs : (this.opts.retention?.everyMs ?? 0);
    return (this.lastRunOf(chore) ?? Number.NEGATIVE_INFINITY) + every;
  }

  private lastRunOf(chore: Chore): number | undefined {
    let at = this.lastRun.get(chore);
    if (at === undefined) {
      const value = this.stores.meta.get(LAST_RUN_KEY[chore]);
      if (value === undefined) return undefined;
      at = Number(value);
      this.lastRun.set(chore, at);
    }
    return at;
  }

  private ran(chore: Chore, now: number): void {
    this.lastRun.set(chore, now);
    this.stores.meta.set(LAST_RUN_KEY[chore], String(now));
  }
}
