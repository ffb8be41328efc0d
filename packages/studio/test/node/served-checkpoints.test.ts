// The served studio checkpoints its WAL on a worker thread (issue 15): `backgroundCheckpoints`
// had been lost from server.ts when it moved to the host-agnostic app, and nothing noticed. Reaches
// the studio's own connection through SQL_OPENED_CHANNEL; the write goes over real HTTP.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import type { CheckpointResult } from '../../src/node/checkpointer.ts';
import { startStudio } from '../../src/node/server.ts';
import { NodeSql as NodeSqlClass, SQL_OPENED_CHANNEL, type NodeSql } from '../../src/node/sqlite.ts';

const ADMIN = 'served-checkpoints-admin';

/** Rejects after `ms` unless cleared: a bound on waiting for an event that may never come. */
function deadline(ms: number, what: string): { expired: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms / 1000} s`)), ms);
  });
  return { expired, clear: () => clearTimeout(timer) };
}

it('the served studio never checkpoints inside a commit; its thread copies the WAL after commits', { timeout: 30_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'served-checkpoints-'));
  const database = join(dataDir, 'studio.sqlite');
  const opened: NodeSql[] = [];
  const onOpen = (message: unknown) => {
    const { sql, path } = message as { sql: NodeSql; path: string };
    if (path === database) opened.push(sql);
  };
  subscribe(SQL_OPENED_CHANNEL, onOpen);
  const studio = await startStudio({ dataDir, port: 0, host: '127.0.0.1', adminToken: ADMIN, log: silentLogger });
  unsubscribe(SQL_OPENED_CHANNEL, onOpen);
  try {
    assert.equal(opened.length, 1, 'the studio opened its database once');
    const sql = opened[0] as NodeSql;
    const { wal_autocheckpoint } = sql.db.prepare('PRAGMA wal_autocheckpoint').get() as { wal_autocheckpoint: number };
    assert.equal(wal_autocheckpoint, 0, 'SQLite does not checkpoint inside the commit that crosses 1000 pages');
    const results: CheckpointResult[] = [];
    let wake = () => {};
    sql.onCheckpoint((result) => {
      assert.ok(!('error' in result), `a checkpoint failed: ${'error' in result ? result.error : ''}`);
      results.push(result);
      wake();
    });
    const answer = await fetch(`${studio.url}/graphics/api/workers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'checkpoint-me' }),
    });
    assert.equal(answer.status, 201, 'the write was committed');
    // A checkpoint follows every commit within the thread's interval (a running one, or one
    // started too recently, is followed by another): wait for one that found the WAL's frames.
    const limit = deadline(10_000, 'checkpoint on the thread after a commit');
    try {
      while (!results.some((r) => r.by === 'thread' && r.log > 0)) await Promise.race([new Promise<void>((resolve) => (wake = resolve)), limit.expired]);
    } finally {
      limit.clear();
    }
    const result = results.find((r) => r.by === 'thread' && r.log > 0) as CheckpointResult;
    assert.ok(result.checkpointed > 0, `the thread copied frames into the database file (${result.checkpointed} of ${result.log})`);
  } finally {
    await studio.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

it('a stopped studio leaves no -wal file behind: its own connection closes last and folds the WAL in', { timeout: 30_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'served-checkpoints-close-'));
  try {
    const studio = await startStudio({ dataDir, port: 0, host: '127.0.0.1', adminToken: ADMIN, log: silentLogger });
    const answer = await fetch(`${studio.url}/graphics/api/workers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'before-the-stop' }),
    });
    assert.equal(answer.status, 201);
    assert.ok(existsSync(join(dataDir, 'studio.sqlite-wal')), 'a serving studio has a WAL');
    await studio.close();
    // `studio restore` takes a -wal file for a running studio: none may be left once close() returned.
    assert.equal(existsSync(join(dataDir, 'studio.sqlite-wal')), false, 'the WAL is folded in and removed');
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(join(dataDir, 'studio.sqlite'), { readOnly: true });
    const row = db.prepare("SELECT COUNT(*) AS n FROM workers WHERE label = 'before-the-stop'").get() as { n: number };
    db.close();
    assert.equal(row.n, 1, 'the write is in the database file');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

it('closing while the thread is in the middle of a checkpoint still leaves no -wal file', { timeout: 30_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'served-checkpoints-busy-'));
  const path = join(dataDir, 'busy.sqlite');
  try {
    const sql = new NodeSqlClass(path, { groupCommit: true, backgroundCheckpoints: true });
    sql.exec('CREATE TABLE big (b BLOB)');
    sql.commit();
    // ~24 MiB of WAL: the commit pokes the thread, whose checkpoint then takes a while to copy it.
    for (let i = 0; i < 24; i++) sql.run('INSERT INTO big VALUES (randomblob(1048576))');
    let started = false;
    sql.onCheckpoint(() => (started = true));
    sql.commit();
    assert.equal(started, false, 'the checkpoint is still running when close() is called');
    await sql.close();
    assert.equal(existsSync(`${path}-wal`), false, 'the WAL is folded in and removed once close() settles');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
