import { DEFAULT_DELIVERY_POLICY, DEFAULT_HOUSEKEEPING_OPTIONS, type HousekeepingOptions } from '../core/index.ts';
import { removeResultFiles } from './garbage.ts';
import type { StudioHost } from './host.ts';

const DAY_MS = 24 * 3600_000;

/**
 * The core's housekeeping options as every host sets them: webhook retries starting at
 * `webhookRetryMs` (STUDIO_WEBHOOK_RETRY_MS; default 10 s, tests use a few ms) and, when a retention
 * is set, an hourly pass that deletes results older than `retentionDays` — committing the SQL that
 * marks them expired before any file goes, so a crash in between leaves an unreferenced file, never a
 * job that points at a missing one.
 */
export function housekeepingOptions(host: Pick<StudioHost, 'results' | 'commit'>, settings: { retentionDays?: number; webhookRetryMs?: number }): HousekeepingOptions {
  const { retentionDays, webhookRetryMs } = settings;
  return {
    ...DEFAULT_HOUSEKEEPING_OPTIONS,
    delivery: { ...DEFAULT_DELIVERY_POLICY, baseDelayMs: webhookRetryMs || DEFAULT_DELIVERY_POLICY.baseDelayMs },
    retention:
      retentionDays === undefined
        ? undefined
        : {
            maxAgeMs: retentionDays * DAY_MS,
            everyMs: 3600_000,
            removeFiles: (files) => removeResultFiles(host, files),
          },
  };
}
