import { Worker } from 'node:worker_threads';

/**
 * Moves the WAL into the database file on a worker thread (its own connection), so the fsyncs a
 * checkpoint does never stall the event loop. SQLite's automatic checkpoint runs inside the COMMIT
 * of whichever turn crosses 1000 WAL pages: that turn, and every frame and answer it holds back,
 * waits for two fsyncs (milliseconds on a busy disk; the p99 of `npm run bench`). Commits stay as
 * durable as before: a commit is in the WAL before anything is acknowledged; only the copy to the
 * main file moves. PASSIVE checkpoints never block the writer.
 *
 * What the thread cannot do alone is let the WAL start over (issue 15). SQLite writes from the
 * WAL's beginning again only when a writer begins while every frame is already copied; under a
 * steady stream of commits new frames always arrive while a checkpoint runs, so that moment never
 * comes and the WAL grows by the 100 MB a second (776 MB in 8 s of `npm run bench`). So once the
 * WAL is longer than WAL_RESTART_FRAMES the thread runs short passes right after the long one, each
 * copying what arrived during the one before, until one copies at most WAL_NEAR_FRAMES; it then
 * flushes the database file (SQLite fsyncs it only in a checkpoint that reaches the WAL's end, so
 * the owner's would otherwise carry every page the passes wrote since the last restart), copies
 * once more and hands off. It also hands off a WAL longer than WAL_FORCE_FRAMES that the passes
 * did not get near the end of (a contended CPU or disk): a longer copy for the owner, but the WAL
 * stays bounded. The owner's connection copies the last frames right after its
 * next commit, when nothing else writes, and the commit after that starts the WAL over
 * (sqlite.ts). Until the owner calls `resume()`, the thread starts nothing.
 *
 * Measured against the alternatives (bench/README.md, "WAL bounded"): a RESTART checkpoint on the
 * thread (TRUNCATE alike) takes the write lock, and the event loop's next BEGIN sleeps in
 * busy_timeout behind it (ticks of 98 and 240 ms); the loop's catch-up without the thread's flush
 * of the database file paid for every page of the cycle (~7 ms); with it, ~0.5 ms.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const { openSync, fdatasyncSync, closeSync } = require('node:fs');
const db = new DatabaseSync(workerData.path);
db.exec('PRAGMA busy_timeout = 5000');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const dbFile = openSync(workerData.path, 'r');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    closeSync(dbFile);
    parentPort.close();
    return;
  }
  try {
    const started = performance.now();
    let row = checkpoint.get();
    let passes = 1;
    let near = false;
    while (row.log > workerData.restartFrames && passes < workerData.maxPasses) {
      const before = row.log;
      row = checkpoint.get();
      passes++;
      near = row.log - before <= workerData.nearFrames && row.log - row.checkpointed <= workerData.nearFrames;
      if (near) break;
    }
    const handOff = near || row.log > workerData.forceFrames;
    if (handOff) {
      fdatasyncSync(dbFile);
      row = checkpoint.get();
      passes++;
    }
    parentPort.postMessage({ by: 'thread', log: row.log, checkpointed: row.checkpointed, ms: performance.now() - started, passes, handOff });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

/** WAL frames (4 KiB pages; 16 MiB) past which the thread works towards a restart of the WAL. */
export const WAL_RESTART_FRAMES = 4_096;
/** A pass that copied at most this many frames is near the end: the loop copies the rest (~0.5 ms). */
export const WAL_NEAR_FRAMES = 512;
/** WAL frames (32 MiB) past which the thread hands off even when its passes did not get near. */
export const WAL_FORCE_FRAMES = 8_192;
/** The most passes one checkpoint runs; a long WAL not handed off is checkpointed again at once. */
const MAX_PASSES = 5;
/** A checkpoint starts at most this often (ms), and within this long of a commit. */
const INTERVAL_MS = 100;

export interface CheckpointResult {
  /** The worker thread, or the owner's catch-up on its event loop that lets the WAL start over. */
  by: 'thread' | 'loop';
  /** Frames in the WAL, and how many of them are in the database file now. */
  log: number;
  checkpointed: number;
  /** How long it took (on the thread: all passes). */
  ms: number;
  /** Thread only: passes run, and whether the owner is to copy the last frames (see above). */
  passes?: number;
  handOff?: boolean;
}

/**
 * `stopped`: the thread itself ended (it crashed, or could not open the database). Nothing starts
 * on it again; the owner checkpoints without it (sqlite.ts).
 */
export type CheckpointOutcome = CheckpointResult | { error: string; stopped?: true };

export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private inFlight = false;
  private lastStart = Number.NEGATIVE_INFINITY;
  private closed = false;
  /** Settles when the thread has ended (its connection closed first). */
  private readonly ended: Promise<void>;
  /** A commit came while a checkpoint ran, or too soon after one: start another when allowed. */
  private owed = false;
  private timer: NodeJS.Timeout | undefined;
  /** The last one left a long WAL it did not hand off: the next starts without waiting. */
  private urgent = false;
  /** The owner is to copy the last frames (a hand-off): nothing starts until `resume()`. */
  private held = false;
  /** The thread ended without being asked to (see `CheckpointOutcome`). */
  private stopped = false;

  /** `onDone` hears every outcome; on a hand-off the owner copies the rest, then calls `resume()`. */
  constructor(path: string, onDone: (result: CheckpointOutcome) => void) {
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { path, restartFrames: WAL_RESTART_FRAMES, nearFrames: WAL_NEAR_FRAMES, forceFrames: WAL_FORCE_FRAMES, maxPasses: MAX_PASSES },
    });
    this.worker.on('message', (result: CheckpointOutcome) => {
      this.inFlight = false;
      const long = !('error' in result) && result.log > WAL_RESTART_FRAMES;
      this.held = long && (result as CheckpointResult).handOff === true;
      this.urgent = long && !this.held;
      onDone(result);
      if (this.owed) this.poke();
    });
    // An uncaught error ends the thread ('error', then 'exit'); so does anything else that kills it.
    // Either way a checkpoint would never start again and the WAL would grow for good: say so once.
    let lastError: string | undefined;
    this.worker.on('error', (error) => {
      lastError = error.message;
    });
    this.ended = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        this.inFlight = false;
        if (!this.closed) {
          this.stopped = true;
          clearTimeout(this.timer);
          onDone({ error: `the checkpoint thread stopped (${lastError ?? `exit code ${code}`})`, stopped: true });
        }
        resolve();
      }),
    );
    // After the listeners: adding a 'message' listener refs the worker again, and an owner that
    // never closes its connection (a test that failed, a CLI) would then never exit.
    this.worker.unref();
  }

  /**
   * After a commit: start a checkpoint now, or as soon as the running one ends or `INTERVAL_MS`
   * after the last start, so the last commits of a burst are copied too and an idle studio's WAL
   * is all in the database file (its next write then starts the WAL over).
   */
  poke(now = performance.now()): void {
    if (this.closed || this.stopped) return;
    this.owed = true;
    if (this.inFlight || this.held || this.timer) return;
    const wait = this.urgent ? 0 : this.lastStart + INTERVAL_MS - now;
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.poke();
      }, wait);
      this.timer.unref();
      return;
    }
    this.owed = false;
    this.inFlight = true;
    this.lastStart = now;
    this.worker.postMessage('checkpoint');
  }

  /** The owner copied the last frames: checkpoints start again from the next commit's `poke()`. */
  resume(): void {
    this.held = false;
    this.owed = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Close the thread's connection and end the thread. The process waits for it (the worker is
   * ref'd again): the owner closes its own connection after this settles, so it is the last one and
   * SQLite folds the WAL into the database file and removes it (a stopped studio leaves no -wal
   * behind, which `studio restore` would take for a running one).
   */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      clearTimeout(this.timer);
      this.worker.ref();
      this.worker.postMessage('close');
    }
    return this.ended;
  }
}
