import { ApiTokenStore } from './api-token-store.ts';
import { EventStore } from './event-store.ts';
import { FinishedJobStore } from './finished-job-store.ts';
import { JobKeyStore } from './job-key-store.ts';
import { JobStore } from './job-store.ts';
import { MetaStore } from './meta-store.ts';
import { MetricsStore } from './metrics-store.ts';
import { ModelStore } from './model-store.ts';
import type { SqlPort, SqlValue } from './ports.ts';
import { RegistrationStore } from './registration-store.ts';
import { WorkerLogStore } from './worker-log-store.ts';
import { WorkerStore } from './worker-store.ts';

/**
 * The studio's SQL, all of it: one store per table (or per family of reads), built once by
 * createStudioCore and handed to every service. Services decide; stores only read and write rows,
 * so a statement lives in exactly one place (test/core/sql-in-stores.test.ts keeps SQL out of the
 * other core files).
 */
export interface Stores {
  jobs: JobStore;
  workers: WorkerStore;
  workerLogs: WorkerLogStore;
  models: ModelStore;
  registrations: RegistrationStore;
  apiTokens: ApiTokenStore;
  /** Idempotency keys and the owner of each job. */
  jobKeys: JobKeyStore;
  /** Job events and the webhook outbox that delivers them. */
  events: EventStore;
  /** Finished jobs' results as a whole: the gallery, retention, the storage report. */
  finished: FinishedJobStore;
  metrics: MetricsStore;
  /** Small named values (the admin token's hash, one-time marks). */
  meta: MetaStore;
}

export function createStores(sql: SqlPort): Stores {
  return {
    jobs: new JobStore(sql),
    workers: new WorkerStore(sql),
    workerLogs: new WorkerLogStore(sql),
    models: new ModelStore(sql),
    registrations: new RegistrationStore(sql),
    apiTokens: new ApiTokenStore(sql),
    jobKeys: new JobKeyStore(sql),
    events: new EventStore(sql),
    finished: new FinishedJobStore(sql),
    metrics: new MetricsStore(sql),
    meta: new MetaStore(sql),
  };
}

/**
 * The SQL port the core works through: the host's, plus one thing the job tally needs to stay true.
 * A transaction that throws has been rolled back, and the in-memory counts may have seen changes
 * it undid, so they are counted again from SQL on the next read. (A failed group commit stops the
 * host, and a new core counts at start.)
 */
export class RollbackWatch implements SqlPort {
  private readonly inner: SqlPort;
  private readonly rolledBack: () => void;
  constructor(inner: SqlPort, rolledBack: () => void) {
    this.inner = inner;
    this.rolledBack = rolledBack;
  }
  run(sql: string, ...params: SqlValue[]): number {
    return this.inner.run(sql, ...params);
  }
  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    return this.inner.get<T>(sql, ...params);
  }
  all<T>(sql: string, ...params: SqlValue[]): T[] {
    return this.inner.all<T>(sql, ...params);
  }
  exec(sql: string): void {
    this.inner.exec(sql);
  }
  transaction<T>(fn: () => T): T {
    try {
      return this.inner.transaction(fn);
    } catch (error) {
      this.rolledBack();
      throw error;
    }
  }
}
