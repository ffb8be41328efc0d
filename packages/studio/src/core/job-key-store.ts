import type { SqlPort } from './ports.ts';

/** The owner of what the bootstrap admin token makes. */
export const ADMIN_OWNER = 'admin';

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

  /** File a job under the API token that made it (the submit scope sees only its own jobs). */
  own(jobId: string, owner: string): void {
    this.sql.run('INSERT INTO job_owners (job_id, owner) VALUES (?, ?)', jobId, owner);
  }

  /** Who made a job: the API token's owner, or ADMIN_OWNER when no API token did. */
  ownerOf(jobId: string): string {
    return this.sql.get<{ owner: string }>('SELECT owner FROM job_owners WHERE job_id = ?', jobId)?.owner ?? ADMIN_OWNER;
  }

  insert(owner: string, key: string, requestHash: string, jobId: string, now: number): void {
    this.sql.run('INSERT INTO job_keys (owner, key, request_hash, job_id, created_at) VALUES (?, ?, ?, ?, ?)', owner, key, requestHash, jobId, now);
  }
}
