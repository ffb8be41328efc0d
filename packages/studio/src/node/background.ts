import type { Logger } from '@studio-worker/log';
import type { StudioCore } from '../core/index.ts';

/**
 * The embedded host's clock for the core's housekeeping (core/housekeeping.ts: lease sweep, retry
 * backoff, hello and heartbeat deadlines, webhook deliveries, log pruning, retention). It runs what
 * is due, commits, and sleeps until the next deadline the core names — but never longer than
 * `maxSleepMs`: a request may move the deadline earlier (a new claim, a new delivery), and unlike the
 * Durable Object, which re-arms its alarm after every event, this host does not ask after each request.
 */
export function startHousekeeping(core: StudioCore, commit: () => void, log: Logger, maxSleepMs = 500): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = (next: number | undefined) => {
    if (stopped) return;
    const wait = next === undefined ? maxSleepMs : Math.min(maxSleepMs, Math.max(0, next - Date.now()));
    timer = setTimeout(run, wait);
  };
  const run = () => {
    running = core.housekeeping
      .runDue(Date.now())
      .catch((error: Error) => {
        log.error({ op: 'housekeeping', err: error.message }, 'a housekeeping round failed; trying again');
        return undefined;
      })
      .then((next) => {
        commit();
        running = undefined;
        schedule(next);
      });
  };
  schedule(undefined);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
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
