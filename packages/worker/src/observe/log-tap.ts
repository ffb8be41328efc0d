import type { DestinationStream } from 'pino';

/** One pino JSON line, parsed. Lines pass pino's redaction before they get here, so no secrets. */
export interface LogRecord {
  level: string;
  time?: string;
  module?: string;
  msg?: string;
  jobId?: string;
  [field: string]: unknown;
}

export type LogListener = (record: LogRecord) => void;

/**
 * A log destination that parses each line once and hands it to in-process listeners (the log ring
 * behind `GET /daemon/logs` and the per-job logs behind `GET /jobs/:id/log`).
 */
export class LogTap implements DestinationStream {
  readonly #listeners = new Set<LogListener>();
  readonly #skip: (line: string) => boolean;

  /** `skip`: a cheap look at the raw line that spares parsing lines no listener wants. */
  constructor(skip: (line: string) => boolean = () => false) {
    this.#skip = skip;
  }

  write(line: string): void {
    if (this.#listeners.size === 0 || this.#skip(line)) return;
    let record: LogRecord;
    try {
      const parsed = JSON.parse(line) as unknown;
      if (typeof parsed !== 'object' || parsed === null || typeof (parsed as LogRecord).level !== 'string') return;
      record = parsed as LogRecord;
    } catch {
      return;
    }
    for (const listener of this.#listeners) {
      try {
        listener(record);
      } catch {
        // A listener must never break logging.
      }
    }
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: LogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/**
 * Debug and trace lines that name no job: the ring keeps info and up, job logs want only lines with
 * a job id, so these need no parsing (most of a debug-level daemon's lines).
 */
export function isUntaggedDebugLine(line: string): boolean {
  return (line.includes('"level":"debug"') || line.includes('"level":"trace"')) && !line.includes('"jobId":');
}
