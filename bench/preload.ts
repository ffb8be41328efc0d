/**
 * `npm run bench -- --preload N`: N jobs already in the table before the studio starts, written
 * straight into a fresh database with SQL (a million rows in seconds, not a million API calls).
 * The older half is done (with its attempt row), the newer half queued — for an engine no bench
 * worker serves, as a backlog for other workers would be, so the bench's own jobs still find idle
 * workers. The schema is the studio's own (`migrate`).
 */
import { join } from 'node:path';
import { migrate } from '../packages/studio/src/core/schema.ts';
import { NodeSql } from '../packages/studio/src/node/sqlite.ts';

export const PRELOAD_ENGINE = 'bench-preload';

export function preloadJobs(dataDir: string, count: number): { done: number; queued: number } {
  const sql = new NodeSql(join(dataDir, 'studio.sqlite'));
  migrate(sql);
  const db = sql.db;
  db.exec('PRAGMA synchronous = OFF');
  const done = Math.floor(count / 2);
  const queued = count - done;
  const t = Date.now() - 86_400_000;
  db.exec('BEGIN');
  db.prepare(
    `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
     INSERT INTO jobs (id, seq, status, model, kind, engine, task, model_source, vram_gb_estimate, game_id, asset_name, prompt,
       priority, attempt, failures, losses, max_attempts, last_worker_id, not_before, result_type, result_json,
       created_at, claimed_at, started_at, completed_at, updated_at)
     SELECT 'job-' || printf('%010x', i) || '000000', i,
       CASE WHEN i <= ? THEN 'done' ELSE 'queued' END,
       CASE WHEN i <= ? THEN 'synthetic-llm' ELSE 'bench-preload-image' END,
       CASE WHEN i <= ? THEN 'llm' ELSE 'image' END,
       CASE WHEN i <= ? THEN 'synthetic' ELSE ? END,
       CASE WHEN i <= ? THEN '{"kind":"llm","messages":[{"role":"user","content":"preload ' || i || '"}],"maxTokens":1,"temperature":0.7}'
            ELSE '{"kind":"image","prompt":"preload ' || i || '","width":64,"height":64,"steps":1,"ext":"png"}' END,
       CASE WHEN i <= ? THEN '{"engine":"synthetic"}' ELSE '{"engine":"' || ? || '"}' END,
       0, '', '', 'preload ' || i, 0, 1, 0, 0, 3,
       CASE WHEN i <= ? THEN 'w-preload' END, 0,
       CASE WHEN i <= ? THEN 'json' END, CASE WHEN i <= ? THEN '{"ok":true}' END,
       ? + i, CASE WHEN i <= ? THEN ? + i END, CASE WHEN i <= ? THEN ? + i END, CASE WHEN i <= ? THEN ? + i END, ? + i
     FROM k`,
  ).run(count, done, done, done, done, PRELOAD_ENGINE, done, done, PRELOAD_ENGINE, done, done, done, t, done, t, done, t, done, t, t);
  db.exec(
    `INSERT INTO job_attempts (job_id, attempt, worker_id, offered_at, accepted_at, ended_at, outcome)
     SELECT id, 1, 'w-preload', claimed_at, started_at, completed_at, 'done' FROM jobs WHERE status = 'done'`,
  );
  db.exec('COMMIT');
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  sql.close();
  return { done, queued };
}
