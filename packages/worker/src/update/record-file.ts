import { readFile, rm } from 'node:fs/promises';
import type { z } from 'zod';
import { writeFileAtomic } from '../config/atomic-file.ts';

// The updater's small JSON records under versions/ (current.json, pending.json): read leniently,
// written atomically. A record that is missing, unreadable or malformed reads as null, which every
// caller treats as "no record" (the launcher then runs its own install); never as an error.

export async function readRecord<T>(path: string, schema: z.ZodType<T>): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Replace the record atomically (a crash leaves the old or the new one), or remove it for null. */
export async function writeRecord(path: string, record: object | null): Promise<void> {
  if (record === null) {
    await rm(path, { force: true });
    return;
  }
  await writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`, 0o644);
}
