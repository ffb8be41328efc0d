import type { SqlPort } from './ports.ts';

/**
 * Idempotency keys: (owner, key) → the job it made and a hash of the request body that made it.
 * The owner scopes keys to whoever sent them (the admin token or an API token), so two clients
 * never collide on the same key.
 */
export class JobKeyStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  find(owner: string, key: string): { jobId: string; requestHash: string } | undefined {
    return this.sql.get<{ jobId: string; requestHash: string }>(
      'SELECT job_id AS jobId, request_hash AS requestHash FROM job_keys WHERE owner = ? AND key = ?',
      owner,
      key,
    );
  }

  insert(owner: string, key: string, requestHash: string, jobId: string, now: number): void {
    this.sql.run('INSERT INTO job_keys (owner, key, request_hash, job_id, created_at) VALUES (?, ?, ?, ?, ?)', owner, key, requestHash, jobId, now);
  }
}
