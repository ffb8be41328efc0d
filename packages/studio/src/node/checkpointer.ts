import { Worker } from 'node:worker_threads';

/**
 * Moves the WAL into the database file on a worker thread (its own connection), so the fsyncs a
 * checkpoint does never stall the event loop. SQLite's automatic checkpoint runs inside the COMMIT
 * of whichever turn crosses 1000 WAL pages: that turn, and every frame and answer it holds back,
 * waits for two fsyncs (milliseconds on a busy disk; the p99 of `npm run bench`). Commits stay as
 * durable as before: a commit is in the WAL before anything is acknowledged; only the copy to the
 * main file moves. PASSIVE checkpoints never block the writer.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.path);
db.exec('PRAGMA busy_timeout = 5000');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const row = db.prepare('PRAGMA wal_checkpoint(PASSIVE)').get();
    parentPort.postMessage({ log: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

export interface CheckpointResult {
  /** Frames in the WAL, and how many of them are in the database file now. */
  log: number;
  checkpointed: number;
}

export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private inFlight = false;
  private lastStart = Number.NEGATIVE_INFINITY;
  private closed = false;
  private readonly intervalMs: number;

  /** `onDone` hears every result (the owner decides whether the WAL grew too long). */
  constructor(path: string, intervalMs: number, onDone: (result: CheckpointResult | { error: string }) => void) {
    this.intervalMs = intervalMs;
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { path } });
    this.worker.unref();
    this.worker.on('message', (result: CheckpointResult | { error: string }) => {
      this.inFlight = false;
      onDone(result);
    });
    this.worker.on('error', (error) => {
      this.inFlight = false;
      onDone({ error: error.message });
    });
  }

  /** After a commit: start a checkpoint unless one runs or one started less than `intervalMs` ago. */
  poke(now = performance.now()): void {
    if (this.closed || this.inFlight || now - this.lastStart < this.intervalMs) return;
    this.inFlight = true;
    this.lastStart = now;
    this.worker.postMessage('checkpoint');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.worker.postMessage('close');
  }
}
