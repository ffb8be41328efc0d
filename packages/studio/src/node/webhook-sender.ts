import type { Logger } from '@studio-worker/log';
import { DEFAULT_DELIVERY_POLICY, type DeliveryPolicy, type StudioCore } from '../core/index.ts';

/**
 * The embedded host's webhook sender: every half second, the due deliveries of the outbox go out.
 * STUDIO_WEBHOOK_RETRY_MS sets the first retry delay (default 10 s; tests use a few ms).
 */
export function startWebhookSender(core: StudioCore, log: Logger, commit: () => void): { stop(): Promise<void> } {
  const policy: DeliveryPolicy = { ...DEFAULT_DELIVERY_POLICY, baseDelayMs: Number(process.env.STUDIO_WEBHOOK_RETRY_MS) || DEFAULT_DELIVERY_POLICY.baseDelayMs };
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
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
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
