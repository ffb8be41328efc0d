import { z } from 'zod';
import { readRecord, writeRecord } from './record-file.ts';
import { parseVersion } from './semver.ts';

/** A version as the updater writes it (x.y.z[-pre]); anything else makes the record unusable. */
export const versionText = z.string().refine((text) => parseVersion(text) !== null, 'not a version');

/** `versions/current.json`: which installed version the launcher runs. */
const currentPointerSchema = z.object({
  version: versionText,
  /** The version that ran before this one was switched in. */
  previous: z.string().optional().catch(undefined),
  switchedAt: z.string().catch(''),
});
export type CurrentPointer = z.infer<typeof currentPointerSchema>;

/** The pointer, or null when there is none (or it is unreadable): then the launcher runs its own install. */
export function readPointer(path: string): Promise<CurrentPointer | null> {
  return readRecord(path, currentPointerSchema);
}

/** Replace the pointer atomically (a crash leaves the old or the new one), or remove it for null. */
export function writePointer(path: string, pointer: CurrentPointer | null): Promise<void> {
  return writeRecord(path, pointer);
}
