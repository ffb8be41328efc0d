import { readFile } from 'node:fs/promises';
import type { Logger } from '@studio-worker/log';
import { writeFileAtomic } from '../config/atomic-file.ts';
import type { EngineStatus } from '../engines/router.ts';
import type { RegistrationState } from '../registration/index.ts';
import type { SessionState } from '../session/index.ts';

/**
 * `<config dir>/state.json`: what the daemon is doing, for `studio-worker status`. No secrets.
 * Fields added after the first release are optional: the file may come from an older daemon.
 */
export interface DaemonState {
  pid: number;
  version: string;
  registration: RegistrationState;
  session: SessionState;
  workerId?: string;
  /** Accepted jobs not finished yet, the one with the engine first. */
  currentJobIds: string[];
  /** Of those, prefetched jobs waiting for the engine. */
  waitingJobIds?: string[];
  /** Undelivered results and failures. */
  outboxEntries: number;
  paused: boolean;
  /** Failed jobs in a row (engine failures; a success resets it). */
  consecutiveFailures?: number;
  /** While the worker pauses itself after failed jobs: until when (ISO). */
  cooldownUntil?: string;
  cooldownAfterFailures?: number;
  lastFailure?: string;
  /** Engine time against wall time since the first job started (ms). */
  engineBusy?: { busyMs: number; sinceMs: number };
  engines: EngineStatus[];
  /** Where the local API listens (local-api.json has the token). */
  localApiUrl?: string;
  updatedAt: string;
}

/**
 * Writes state.json atomically whenever something changed. Writes never overlap: a change during a
 * write is written right after it, with the newest state.
 */
export class StateFile {
  readonly path: string;
  readonly #snapshot: () => Omit<DaemonState, 'updatedAt'>;
  readonly #log: Logger;
  #writing: Promise<void> | null = null;
  #dirty = false;

  constructor(path: string, snapshot: () => Omit<DaemonState, 'updatedAt'>, log: Logger) {
    this.path = path;
    this.#snapshot = snapshot;
    this.#log = log;
  }

  /**
   * Something changed; write soon: after this turn of the event loop, so the caller (a job that
   * starts, a frame that arrived) does not wait for the snapshot and its JSON, and the changes of
   * one turn are one write.
   */
  changed(): void {
    this.#dirty = true;
    this.#writing ??= nextTurn()
      .then(() => this.#drain())
      .finally(() => {
        this.#writing = null;
      });
  }

  /** Resolves once every change so far is on disk. */
  async settled(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #drain(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      const state: DaemonState = { ...this.#snapshot(), updatedAt: new Date().toISOString() };
      try {
        await writeFileAtomic(this.path, `${JSON.stringify(state, null, 2)}\n`, 0o600);
      } catch (error) {
        this.#log.warn({ op: 'state_file', err: error }, 'could not write state.json; `studio-worker status` may be out of date');
      }
    }
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** state.json, or null when missing or unreadable. */
export async function readDaemonState(path: string): Promise<DaemonState | null> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as DaemonState;
    return typeof value === 'object' && value !== null && typeof value.pid === 'number' ? value : null;
  } catch {
    return null;
  }
}
