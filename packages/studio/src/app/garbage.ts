import type { Logger } from '@studio-worker/log';
import type { StudioCore } from '../core/index.ts';
import type { StudioHost } from './host.ts';

/**
 * One retention pass: mark in SQL and commit, then delete the files (see core/retention.ts). The
 * commit comes first so a crash between the two leaves files nothing refers to, never rows that
 * point at deleted files. Used by POST /gc and by a host's periodic retention.
 */
export async function collectGarbage(core: StudioCore, host: Pick<StudioHost, 'results' | 'commit'>, log: Logger, maxAgeMs: number) {
  const report = core.retention.collect(maxAgeMs);
  host.commit();
  for (const file of report.files) await host.results.remove(file);
  if (report.expiredJobs || report.prunedEvents) log.info({ op: 'gc', expiredJobs: report.expiredJobs, freedBytes: report.freedBytes, prunedEvents: report.prunedEvents }, 'old results deleted');
  return { expiredJobs: report.expiredJobs, freedBytes: report.freedBytes, prunedEvents: report.prunedEvents };
}
