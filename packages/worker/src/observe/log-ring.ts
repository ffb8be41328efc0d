import type { LogRecord } from './log-tap.ts';

export const LOG_RING_CAPACITY = 1000;
/** Longer messages are cut (with an ellipsis) so one huge line cannot bloat every poll. */
const MAX_MESSAGE_CHARS = 4000;
const RING_LEVELS = new Set(['info', 'warn', 'error', 'fatal']);

export interface LogRingEntry {
  seq: number;
  ts: string;
  level: 'info' | 'warn' | 'error' | 'fatal';
  module: string;
  msg: string;
  jobId?: string;
}

export interface LogRingPage {
  entries: LogRingEntry[];
  /** The sequence number to pass as `after` next time. */
  seq: number;
}

/**
 * The daemon's recent log lines at info and up (original-spec §3.8 "UI ring"), each with a sequence
 * number, for `GET /daemon/logs?after=<seq>`. Numbers start at 1 with every daemon start.
 */
export class LogRing {
  readonly capacity: number;
  #entries: LogRingEntry[] = [];
  #seq = 0;

  constructor(capacity = LOG_RING_CAPACITY) {
    this.capacity = capacity;
  }

  /** The newest sequence number (0 before the first line). */
  get seq(): number {
    return this.#seq;
  }

  push(record: LogRecord): void {
    if (!RING_LEVELS.has(record.level)) return;
    const msg = typeof record.msg === 'string' ? record.msg : '';
    const entry: LogRingEntry = {
      seq: ++this.#seq,
      ts: typeof record.time === 'string' ? record.time : new Date().toISOString(),
      level: record.level as LogRingEntry['level'],
      module: typeof record.module === 'string' && record.module ? record.module : 'worker',
      msg: msg.length > MAX_MESSAGE_CHARS ? `${msg.slice(0, MAX_MESSAGE_CHARS - 1)}…` : msg,
    };
    if (typeof record.jobId === 'string' && record.jobId) entry.jobId = record.jobId;
    this.#entries.push(entry);
    if (this.#entries.length > this.capacity) this.#entries.shift();
  }

  /**
   * Lines after `after`, oldest first, at most `limit` (the oldest ones; `seq` then names the last
   * one returned, so the next call continues from there). An `after` beyond the newest line means
   * the daemon restarted since the caller's last look: the whole ring comes back.
   */
  after(after: number | undefined, limit = this.capacity): LogRingPage {
    const from = after === undefined || after > this.#seq || after < 0 ? 0 : after;
    const matching = this.#entries.filter((entry) => entry.seq > from);
    const entries = matching.slice(0, Math.max(0, limit));
    return { entries, seq: entries.length < matching.length ? (entries.at(-1)?.seq ?? from) : this.#seq };
  }
}
