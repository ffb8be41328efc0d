import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqlPort, SqlValue } from '../core/ports.ts';
import { BackgroundCheckpointer, type CheckpointResult } from './checkpointer.ts';

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

/** WAL frames (4 KiB pages) past which the event loop checkpoints itself: the thread fell behind. */
const WAL_FRAMES_CATCH_UP = 16_384;

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
  /** The checkpoint thread reported a long WAL it could not finish: finish it here, once. */
  private catchUp = false;
  private readonly checkpointListeners: Array<(result: CheckpointResult | { error: string }) => void> = [];

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
    if (options.backgroundCheckpoints) {
      this.db.exec('PRAGMA wal_autocheckpoint = 0');
      this.checkpointer = new BackgroundCheckpointer(path, 100, (result) => {
        // Under a steady stream of commits the thread never quite catches up with the WAL's end,
        // so SQLite cannot start the WAL over and it keeps growing: past the limit, the event loop
        // copies the few frames left (the thread did the rest) and the next commit restarts it.
        if (!('error' in result) && result.log > WAL_FRAMES_CATCH_UP && result.checkpointed < result.log) this.catchUp = true;
        for (const listener of this.checkpointListeners) listener(result);
      });
    }
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
    if (this.catchUp) {
      this.catchUp = false;
      this.db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    }
    this.checkpointer?.poke();
  }

  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  /** Each background checkpoint's outcome (tests; a log line could listen here). */
  onCheckpoint(listener: (result: CheckpointResult | { error: string }) => void): void {
    this.checkpointListeners.push(listener);
  }

  onCommitFailure(listener: (error: Error) => void): void {
    this.failureListeners.push(listener);
  }

  close(): void {
    this.commit();
    this.checkpointer?.close();
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
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
