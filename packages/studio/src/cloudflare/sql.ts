import type { Row, SqlPort, SqlValue } from '../core/ports.ts';
import type { DurableObjectStorage } from './types.ts';

/**
 * The core's SQL port over a Durable Object's SQLite storage (`ctx.storage.sql`). Synchronous like
 * node:sqlite, so the same schema, migrations and statements run unchanged. Differences handled
 * here (checked under workerd 2026-07-30):
 * - `BEGIN`/`SAVEPOINT` are refused; `transactionSync` is the transaction, and nests (an inner one
 *   that throws rolls back only its own writes, as the Node host's savepoints do).
 * - a cursor's `rowsWritten` counts index writes too, so the changed-row count comes from
 *   `changes()` (asked only when something was written).
 * - bigint parameters are refused (converted to numbers; the core never needs more than 2^53) and
 *   blobs come back as ArrayBuffer (handed on as Uint8Array, as node:sqlite does).
 * No commit step: the object's output gate holds every answer and frame until its writes are durable.
 */
export class DurableSql implements SqlPort {
  private readonly storage: DurableObjectStorage;

  constructor(storage: DurableObjectStorage) {
    this.storage = storage;
  }

  run(sql: string, ...params: SqlValue[]): number {
    const cursor = this.storage.sql.exec(sql, ...params.map(bind));
    // Drain it: a statement runs step by step as its cursor is read.
    for (const _ of cursor) void _;
    if (cursor.rowsWritten === 0) return 0;
    return this.storage.sql.exec<{ n: number }>('SELECT changes() AS n').one().n;
  }

  get<T = Row>(sql: string, ...params: SqlValue[]): T | undefined {
    const rows = this.storage.sql.exec(sql, ...params.map(bind)).toArray();
    const row = rows[0];
    return row === undefined ? undefined : (fromStorage(row) as T);
  }

  all<T = Row>(sql: string, ...params: SqlValue[]): T[] {
    return this.storage.sql.exec(sql, ...params.map(bind)).toArray().map((row) => fromStorage(row) as T);
  }

  exec(sql: string): void {
    for (const _ of this.storage.sql.exec(sql)) void _;
  }

  transaction<T>(fn: () => T): T {
    return this.storage.transactionSync(fn);
  }
}

function bind(value: SqlValue): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

function fromStorage(row: Record<string, unknown>): Record<string, unknown> {
  for (const key in row) {
    const value = row[key];
    if (value instanceof ArrayBuffer) row[key] = new Uint8Array(value);
  }
  return row;
}
