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
  await removeResultFiles(host, report.files);
  if (report.expiredJobs || report.prunedEvents) log.info({ op: 'gc', expiredJobs: report.expiredJobs, freedBytes: report.freedBytes, prunedEvents: report.prunedEvents }, 'old results deleted');
  return { expiredJobs: report.expiredJobs, freedBytes: report.freedBytes, prunedEvents: report.prunedEvents };
}

/**
 * Delete result files whose jobs SQL already marked expired: commit that first, so a crash in
 * between leaves unreferenced files, never jobs pointing at missing ones (POST /gc, and the
 * hourly retention of app/housekeeping.ts).
 */
export async function removeResultFiles(host: Pick<StudioHost, 'results' | 'commit'>, files: readonly string[]): Promise<void> {
  host.commit();
  for (const file of files) await host.results.remove(file);
}
