import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { channel } from 'node:diagnostics_channel';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqlPort, SqlValue } from '../core/ports.ts';
import { BackgroundCheckpointer, type CheckpointOutcome } from './checkpointer.ts';

export interface NodeSqlOptions {
  /**
   * Group commit: every statement of one event-loop turn runs in one transaction, committed when
   * the turn ends (or earlier through `commit()`). The host holds back what it tells the outside
   * world (frames, HTTP answers) until `onCommit`, so nothing is acknowledged before it is durable.
   * The core's `transaction()` becomes a savepoint, so each of its units stays all-or-nothing.
   */
  groupCommit?: boolean;
  /**
   * Group commit: how many event-loop turns a group transaction spans (default 1). With 2, the
   * writes of the turn after the first join the same commit: about twice the jobs share a commit's
   * fixed cost (~100 µs of WAL writes) while workers keep the loop busy, at the price of frames to
   * workers leaving one turn later (an HTTP answer commits at once, so it is not delayed).
   */
  commitTurns?: number;
  /** SQLite page cache in MiB (default 64; SQLite's own default is 2). */
  cacheMiB?: number;
  /**
   * Checkpoint the WAL on a worker thread instead of inside a commit (see checkpointer.ts). A
   * file database only.
   */
  backgroundCheckpoints?: boolean;
}

/**
 * The savepoint statements of one nesting depth, built once: statements are found by their text,
 * and a string built per use is hashed and compared on every lookup (one result = two of them).
 */
const savepoints: Array<{ begin: string; release: string; rollback: string }> = [];
function savepointTexts(depth: number): { begin: string; release: string; rollback: string } {
  let texts = savepoints[depth];
  if (!texts) {
    texts = { begin: `SAVEPOINT unit${depth}`, release: `RELEASE unit${depth}`, rollback: `ROLLBACK TO unit${depth}` };
    savepoints[depth] = texts;
  }
  return texts;
}

/**
 * `PRAGMA journal_size_limit`: when the WAL starts over, SQLite truncates a longer file to this.
 * Background checkpoints restart the WAL past 16 MiB (checkpointer.ts), at about 30 MiB under
 * `npm run bench` (what arrives while the thread works its way to the end), so a steady cycle
 * stays below it and never pays a truncate and regrow; a WAL that a burst grew (one large
 * transaction, a disk that stalled the thread) comes back to it at its next restart. Also the
 * bound wal-bounded.test.ts holds the WAL to.
 */
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** SQLite's default `wal_autocheckpoint`, used again when the checkpoint thread has stopped. */
export const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

/**
 * Every NodeSql publishes `{ sql, path }` on this diagnostics channel when it opens: how a test
 * (or a probe loaded with --import) reaches the connection of a studio it started, e.g. to check
 * that the served studio checkpoints on its thread. Free while nobody subscribes.
 */
export const SQL_OPENED_CHANNEL = 'studio-worker:sqlite:open';
const opened = channel(SQL_OPENED_CHANNEL);

/**
 * The core's SQL port over node:sqlite. WAL with synchronous=NORMAL: every committed transaction
 * survives a crash of the studio process (not a power cut between checkpoints), at the cost of a
 * write to the WAL instead of an fsync per commit.
 */
export class NodeSql implements SqlPort {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private readonly groupCommit: boolean;
  private readonly commitTurns: number;
  private readonly commitListeners: Array<() => void> = [];
  private readonly failureListeners: Array<(error: Error) => void> = [];
  /** A group transaction is open (group commit). */
  private open = false;
  /** Nesting of transaction(): outer transaction (no group commit) or savepoints. */
  private depth = 0;
  private readonly checkpointer: BackgroundCheckpointer | undefined;
  /** The checkpoint thread handed off a long WAL: copy its last frames here after the next commit. */
  private catchUp = false;
  private readonly checkpointListeners: Array<(result: CheckpointOutcome) => void> = [];

  constructor(path: string, options: NodeSqlOptions = {}) {
    ownerOnly(path);
    this.db = new DatabaseSync(path);
    this.groupCommit = options.groupCommit ?? false;
    this.commitTurns = Math.max(1, Math.floor(options.commitTurns ?? 1));
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = NORMAL');
    this.db.exec('PRAGMA busy_timeout = 5000');
    this.db.exec('PRAGMA foreign_keys = ON');
    this.db.exec(`PRAGMA cache_size = -${Math.round((options.cacheMiB ?? 64) * 1024)}`);
    this.db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT}`);
    if (options.backgroundCheckpoints) {
      this.db.exec('PRAGMA wal_autocheckpoint = 0');
      this.checkpointer = new BackgroundCheckpointer(path, (result) => {
        // The WAL is long and the thread got (near) to its end: this connection copies the last
        // frames after its next commit, and the commit after that starts the WAL over.
        if (!('error' in result) && result.handOff) this.catchUp = true;
        // Without the thread, SQLite's own checkpoints come back: inside the COMMIT that crosses
        // 1,000 WAL pages (its two fsyncs in that turn), but the WAL stays bounded.
        if ('error' in result && result.stopped && this.db.isOpen) {
          this.catchUp = false;
          this.db.exec(`PRAGMA wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
        }
        this.told(result);
      });
    }
    if (opened.hasSubscribers) opened.publish({ sql: this, path });
  }

  private told(result: CheckpointOutcome): void {
    for (const listener of this.checkpointListeners) listener(result);
  }

  private prepare(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * A transaction-control statement, prepared once: `exec` would parse it again on every use, and
   * a job passes through several of them (the turn's BEGIN/COMMIT, a savepoint per unit).
   */
  private control(sql: string): void {
    this.prepare(sql).run();
  }

  /** Group commit: open this turn's transaction on first use, and commit it when the turn ends. */
  private join(): void {
    if (!this.groupCommit || this.open) return;
    this.control('BEGIN IMMEDIATE');
    this.open = true;
    this.commitAfter(this.commitTurns);
  }

  private commitAfter(turns: number): void {
    setImmediate(() => (turns <= 1 || !this.open ? this.commit() : this.commitAfter(turns - 1)));
  }

  run(sql: string, ...params: SqlValue[]): number {
    this.join();
    return Number(this.prepare(sql).run(...params).changes);
  }

  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    this.join();
    return this.prepare(sql).get(...params) as T | undefined;
  }

  all<T>(sql: string, ...params: SqlValue[]): T[] {
    this.join();
    return this.prepare(sql).all(...params) as T[];
  }

  exec(sql: string): void {
    this.join();
    this.db.exec(sql);
  }

  transaction<T>(fn: () => T): T {
    if (this.groupCommit || this.depth > 0) return this.savepoint(fn);
    this.db.exec('BEGIN IMMEDIATE');
    this.depth++;
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    } finally {
      this.depth--;
    }
  }

  private savepoint<T>(fn: () => T): T {
    this.join();
    const unit = savepointTexts(++this.depth);
    this.control(unit.begin);
    try {
      const result = fn();
      this.control(unit.release);
      return result;
    } catch (error) {
      this.control(unit.rollback);
      this.control(unit.release);
      throw error;
    } finally {
      this.depth--;
    }
  }

  /** Whether writes of this turn are not committed yet (what the host must hold back). */
  get pending(): boolean {
    return this.open;
  }

  /** Commit this turn's transaction now (before an HTTP answer goes out), then tell the listeners. */
  commit(): void {
    if (!this.open) return;
    try {
      this.control('COMMIT');
    } catch (error) {
      // The turn's changes are lost; the in-memory state that went with them is not to be trusted.
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // already rolled back
      }
      this.open = false;
      for (const listener of this.failureListeners) listener(error as Error);
      return;
    }
    this.open = false;
    for (const listener of this.commitListeners) listener();
    if (this.catchUp) this.finishCheckpoint();
    else this.checkpointer?.poke();
  }

  /**
   * The thread handed off (checkpointer.ts): copy the frames written since its last pass, here,
   * right after a commit, when nothing else writes, so that none is left and the next transaction
   * starts the WAL over (SQLite restarts it only for a writer that begins while every frame is
   * copied). The thread is idle and held until then. A short stall of the loop, once per restart:
   * a few hundred frames of mostly the same pages, and a checkpoint's two fsyncs of little
   * (bench/README.md, "WAL bounded": ~0.5 ms, about five times a second under the bench; then
   * ~0.25 ms for the restart's commit, which syncs the WAL's new header).
   */
  private finishCheckpoint(): void {
    this.catchUp = false;
    const started = performance.now();
    const row = this.prepare('PRAGMA wal_checkpoint(PASSIVE)').get() as { log: number; checkpointed: number };
    this.checkpointer?.resume();
    this.told({ by: 'loop', log: row.log, checkpointed: row.checkpointed, ms: performance.now() - started });
  }

  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  /** Each background checkpoint's outcome, the thread's and the loop's catch-up (tests, logs, the bench). */
  onCheckpoint(listener: (result: CheckpointOutcome) => void): void {
    this.checkpointListeners.push(listener);
  }

  onCommitFailure(listener: (error: Error) => void): void {
    this.failureListeners.push(listener);
  }

  /**
   * Commit what is pending and close. With the checkpoint thread, its connection closes first and
   * this one last (the promise settles then), so the WAL is copied into the database file and
   * removed; without it, everything is closed when this returns.
   */
  close(): Promise<void> {
    this.commit();
    this.statements.clear();
    const closeOwn = () => {
      if (this.db.isOpen) this.db.close();
    };
    if (!this.checkpointer) {
      closeOwn();
      return Promise.resolve();
    }
    return this.checkpointer.close().then(closeOwn);
  }
}

/**
 * The database holds prompts and token hashes (issue 9): it is created 0600 before SQLite opens it,
 * a looser one from an earlier version is tightened, and SQLite gives its -wal, -shm and -journal
 * files the database file's mode.
 */
function ownerOnly(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if (mode !== 0o600) chmodSync(file, 0o600);
  }
}
