import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqlPort, SqlValue } from '../core/ports.ts';

export interface NodeSqlOptions {
  /**
   * Group commit: every statement of one event-loop turn runs in one transaction, committed when
   * the turn ends (or earlier through `commit()`). The host holds back what it tells the outside
   * world (frames, HTTP answers) until `onCommit`, so nothing is acknowledged before it is durable.
   * The core's `transaction()` becomes a savepoint, so each of its units stays all-or-nothing.
   */
  groupCommit?: boolean;
  /** SQLite page cache in MiB (default 64; SQLite's own default is 2). */
  cacheMiB?: number;
}

/**
 * The core's SQL port over node:sqlite. WAL with synchronous=NORMAL: every committed transaction
 * survives a crash of the studio process (not a power cut between checkpoints), at the cost of a
 * write to the WAL instead of an fsync per commit.
 */
export class NodeSql implements SqlPort {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private readonly groupCommit: boolean;
  private readonly commitListeners: Array<() => void> = [];
  private readonly failureListeners: Array<(error: Error) => void> = [];
  /** A group transaction is open (group commit). */
  private open = false;
  /** Nesting of transaction(): outer transaction (no group commit) or savepoints. */
  private depth = 0;

  constructor(path: string, options: NodeSqlOptions = {}) {
    this.db = new DatabaseSync(path);
    this.groupCommit = options.groupCommit ?? false;
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = NORMAL');
    this.db.exec('PRAGMA busy_timeout = 5000');
    this.db.exec('PRAGMA foreign_keys = ON');
    this.db.exec(`PRAGMA cache_size = -${Math.round((options.cacheMiB ?? 64) * 1024)}`);
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
    setImmediate(() => this.commit());
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
    const name = `unit${++this.depth}`;
    this.control(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      this.control(`RELEASE ${name}`);
      return result;
    } catch (error) {
      this.control(`ROLLBACK TO ${name}`);
      this.control(`RELEASE ${name}`);
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
  }

  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  onCommitFailure(listener: (error: Error) => void): void {
    this.failureListeners.push(listener);
  }

  close(): void {
    this.commit();
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}
