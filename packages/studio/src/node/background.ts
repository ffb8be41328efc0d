import type { Logger } from '@studio-worker/log';
import { DEFAULT_DELIVERY_POLICY, type DeliveryPolicy, type StudioCore } from '../core/index.ts';
import { collectGarbage } from '../app/garbage.ts';
import type { StudioHost } from '../app/host.ts';

const DAY_MS = 24 * 3600_000;

/**
 * The embedded host's background work over the core: webhook deliveries every half second
 * (STUDIO_WEBHOOK_RETRY_MS sets the first retry delay, default 10 s; tests use a few ms) and, when
 * a retention is set, an hourly garbage collection of old results.
 */
export function startBackground(core: StudioCore, host: Pick<StudioHost, 'results' | 'commit'>, log: Logger, retentionDays: number | undefined): { stop(): Promise<void> } {
  const commit = () => host.commit();
  const policy: DeliveryPolicy = { ...DEFAULT_DELIVERY_POLICY, baseDelayMs: Number(process.env.STUDIO_WEBHOOK_RETRY_MS) || DEFAULT_DELIVERY_POLICY.baseDelayMs };
  let running: Promise<void> | undefined;
  const sender = setInterval(() => {
    if (running) return;
    running = core.webhooks
      .deliverDue(policy)
      .then((n) => {
        if (n > 0) log.debug({ op: 'webhook', tried: n }, 'webhook deliveries sent');
      })
      .catch((error: Error) => log.error({ op: 'webhook', err: error.message }, 'webhook delivery round failed'))
      .finally(() => {
        commit();
        running = undefined;
      });
  }, 500);
  const gc = retentionDays
    ? setInterval(() => {
        collectGarbage(core, host, log, retentionDays * DAY_MS).catch((error: Error) => log.error({ op: 'gc', err: error.message }, 'retention pass failed'));
      }, 3600_000)
    : undefined;
  return {
    async stop() {
      clearInterval(sender);
      clearInterval(gc);
      await running;
    },
  };
}

/** The retention in days: the option, else STUDIO_RETENTION_DAYS (a positive number), else none (keep forever). */
export function retentionDays(option: number | undefined, env = process.env.STUDIO_RETENTION_DAYS): number | undefined {
  if (option !== undefined) return option;
  if (env === undefined || env === '') return undefined;
  const days = Number(env);
  if (!Number.isFinite(days) || days <= 0) throw new Error(`STUDIO_RETENTION_DAYS must be a positive number of days (got "${env}"); unset it to keep results forever`);
  return days;
}
