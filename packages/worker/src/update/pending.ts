import { z } from 'zod';
import { versionText } from './pointer.ts';
import { readRecord, writeRecord } from './record-file.ts';

/**
 * `versions/pending.json`: a version switched in by a supervised handover that has not yet proven
 * itself. The old daemon writes it (attempts 0) before it switches `current.json` and exits for the
 * service manager's restart; the launcher counts the start it makes (attempts 1, with its pid); the
 * new daemon removes it once it has been up for the settle time. A launcher that finds it with a
 * start already made, whose process is gone, rolls back (launch.ts).
 */
const pendingUpdateSchema = z.object({
  /** The version `current.json` was switched to. */
  version: versionText,
  /** The version that ran before, restored by a rollback. */
  previous: versionText,
  /** Starts of `version` the launcher has made (0 or 1: a second one is never made). */
  startedAttempts: z.number().int().nonnegative().catch(0),
  /** The process of that start (the launcher and the daemon are one process). */
  startedPid: z.number().int().optional().catch(undefined),
  startedAt: z.string().optional().catch(undefined),
  switchedAt: z.string().catch(''),
});
export type PendingUpdate = z.infer<typeof pendingUpdateSchema>;

export function readPending(path: string): Promise<PendingUpdate | null> {
  return readRecord(path, pendingUpdateSchema);
}

/** Replace it atomically, or remove it for null. */
export function writePending(path: string, pending: PendingUpdate | null): Promise<void> {
  return writeRecord(path, pending);
}
