import { readFile, stat, rm } from 'node:fs/promises';
import type { ModelFile } from '@studio-worker/protocol';
import { writeFileAtomic } from '../config/atomic-file.ts';
import { verifiedRecordPath } from './paths.ts';

/**
 * `<file>.verified`: proof that a file on disk was checked, so a restart does not re-hash
 * multi-GB files. It is tied to the file's size and mtime: if either changes, the record no longer
 * speaks for the file and the file is checked again.
 */
export interface VerifiedRecord {
  version: 1;
  size: number;
  /** Whole milliseconds: sub-ms precision does not survive every filesystem or `utimes`. */
  mtimeMs: number;
  /** sha256 of the bytes we checked (always computed, whether or not the registry pins one). */
  sha256: string;
  /** The source URL. Without a pinned sha256 the URL is the file's identity: a new URL means a new file. */
  url: string;
  verifiedAt: string;
}

export async function readVerifiedRecord(file: string): Promise<VerifiedRecord | undefined> {
  let text: string;
  try {
    text = await readFile(verifiedRecordPath(file), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<VerifiedRecord>;
    if (value.version !== 1 || typeof value.size !== 'number' || typeof value.mtimeMs !== 'number' || typeof value.sha256 !== 'string' || typeof value.url !== 'string') return undefined;
    return value as VerifiedRecord;
  } catch {
    return undefined;
  }
}

/** Write the record for `file` as it is on disk now (atomically, so a crash never leaves half a record). */
export async function writeVerifiedRecord(file: string, facts: { sha256: string; url: string }): Promise<VerifiedRecord> {
  const info = await stat(file);
  const record: VerifiedRecord = {
    version: 1,
    size: info.size,
    mtimeMs: Math.trunc(info.mtimeMs),
    sha256: facts.sha256.toLowerCase(),
    url: facts.url,
    verifiedAt: new Date().toISOString(),
  };
  const target = verifiedRecordPath(file);
  await writeFileAtomic(target, `${JSON.stringify(record)}\n`, 0o644);
  return record;
}

export async function removeVerifiedRecord(file: string): Promise<void> {
  await rm(verifiedRecordPath(file), { force: true });
}

/**
 * Whether `record` still speaks for `file` as the registry describes it now: same size and mtime on
 * disk, the pinned sha256 when there is one, else the same source URL.
 */
export function recordMatches(record: VerifiedRecord, onDisk: { size: number; mtimeMs: number }, file: Pick<ModelFile, 'url' | 'sha256'>): boolean {
  if (record.size !== onDisk.size || record.mtimeMs !== Math.trunc(onDisk.mtimeMs)) return false;
  if (file.sha256 !== undefined) return record.sha256 === file.sha256.toLowerCase();
  return record.url === file.url;
}
