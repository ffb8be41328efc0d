import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../config/atomic-file.ts';

/**
 * `<config dir>/started.json`: written by every daemon once it is up (config read, lock held,
 * engines probed, session loop started). The updater waits for the successor's record to decide
 * whether the new version is healthy; docs/operations/auto-update.md says why a file and not the
 * local API.
 */
export const STARTED_FILE = 'started.json';

/** Set in the successor's environment: the version it replaced. */
export const UPDATED_FROM_ENV = 'STUDIO_WORKER_UPDATED_FROM';
/** Set in the environment of a version restarted after a failed update: the version that failed. */
export const ROLLED_BACK_FROM_ENV = 'STUDIO_WORKER_ROLLED_BACK_FROM';

export interface StartedRecord {
  version: string;
  pid: number;
  startedAt: string;
  /** The version this one replaced (from STUDIO_WORKER_UPDATED_FROM). */
  updatedFrom?: string;
}

/** Called by the daemon right after it started (see the wiring in docs/operations/auto-update.md). */
export async function recordStartup(configDir: string, record: { version: string; pid?: number; env?: NodeJS.ProcessEnv; now?: Date }): Promise<void> {
  const env = record.env ?? process.env;
  const updatedFrom = env[UPDATED_FROM_ENV];
  const started: StartedRecord = {
    version: record.version,
    pid: record.pid ?? process.pid,
    startedAt: (record.now ?? new Date()).toISOString(),
    ...(updatedFrom ? { updatedFrom } : {}),
  };
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(configDir, STARTED_FILE), `${JSON.stringify(started)}\n`, 0o600);
}

export async function readStartup(configDir: string): Promise<StartedRecord | null> {
  try {
    const json = JSON.parse(await readFile(join(configDir, STARTED_FILE), 'utf8')) as Partial<StartedRecord>;
    if (typeof json.version !== 'string' || typeof json.pid !== 'number') return null;
    return { version: json.version, pid: json.pid, startedAt: String(json.startedAt ?? ''), ...(typeof json.updatedFrom === 'string' ? { updatedFrom: json.updatedFrom } : {}) };
  } catch {
    return null;
  }
}

/** Before a successor starts: a record left by the old daemon must not count as the new one's. */
export async function clearStartup(configDir: string): Promise<void> {
  await rm(join(configDir, STARTED_FILE), { force: true });
}
