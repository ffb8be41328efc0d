// When the checkpoint thread ends on its own (it crashed, or could not open the database), the WAL
// must not grow for good: the checkpointer says so once, and the owner's connection takes SQLite's
// own checkpoints back (inside the commit that crosses 1,000 pages). Before, every later checkpoint
// was posted to a dead thread and `wal_autocheckpoint` stayed 0.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { BackgroundCheckpointer, type CheckpointOutcome } from '../../src/node/checkpointer.ts';
import { NodeSql, SQLITE_AUTOCHECKPOINT_PAGES } from '../../src/node/sqlite.ts';

/** The next outcome `listen` hears, or a failure after `ms`. */
function nextOutcome(listen: (listener: (outcome: CheckpointOutcome) => void) => void, ms: number): Promise<CheckpointOutcome> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no checkpoint outcome within ${ms / 1000} s`)), ms);
    listen((outcome) => {
      clearTimeout(timer);
      resolve(outcome);
    });
  });
}

it('a thread that cannot open the database is reported stopped once, and nothing is posted to it again', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'checkpoint-stops-'));
  try {
    // A directory is no database: the thread's `new DatabaseSync(path)` throws and the thread ends.
    const outcomes: CheckpointOutcome[] = [];
    let first: (outcome: CheckpointOutcome) => void = () => {};
    const checkpointer = new BackgroundCheckpointer(dir, (outcome) => {
      outcomes.push(outcome);
      first(outcome);
    });
    const outcome = await nextOutcome((listener) => (first = listener), 10_000);
    assert.ok('error' in outcome && outcome.stopped === true, `reported: ${JSON.stringify(outcome)}`);
    assert.match(outcome.error, /checkpoint thread stopped/);
    checkpointer.poke(Number.POSITIVE_INFINITY);
    checkpointer.poke(Number.POSITIVE_INFINITY);
    await checkpointer.close();
    assert.equal(outcomes.length, 1, `one report, nothing after: ${JSON.stringify(outcomes)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('without its thread the connection checkpoints inside commits again, and the WAL stays bounded', { timeout: 30_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'checkpoint-stops-'));
  const before = join(root, 'a');
  const after = join(root, 'b');
  mkdirSync(before);
  try {
    const sql = new NodeSql(join(before, 'studio.sqlite'), { backgroundCheckpoints: true });
    // The thread opens the database by path once it has started (milliseconds from now); with the
    // directory moved away, that open fails and the thread ends. Then the directory comes back for
    // this connection, which opens files next to its database (a checkpoint syncs the directory).
    renameSync(before, after);
    const outcome = await nextOutcome((listener) => sql.onCheckpoint(listener), 10_000);
    renameSync(after, before);
    assert.ok('error' in outcome && outcome.stopped === true, `reported: ${JSON.stringify(outcome)}`);
    const { wal_autocheckpoint } = sql.db.prepare('PRAGMA wal_autocheckpoint').get() as { wal_autocheckpoint: number };
    assert.equal(wal_autocheckpoint, SQLITE_AUTOCHECKPOINT_PAGES);

    // About 4,000 pages (16 MiB) in commits of ~40 pages: with no checkpoint at all the WAL would
    // hold every one of them.
    sql.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    const page = Buffer.alloc(3_000, 7);
    for (let commit = 0; commit < 100; commit++) {
      sql.transaction(() => {
        for (let row = 0; row < 40; row++) sql.run('INSERT INTO blobs (data) VALUES (?)', page);
      });
    }
    const walBytes = statSync(join(before, 'studio.sqlite-wal')).size;
    assert.ok(walBytes < 8 * 1024 * 1024, `the WAL is ${(walBytes / 1024 / 1024).toFixed(1)} MiB after 16 MiB of commits`);
    await sql.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
