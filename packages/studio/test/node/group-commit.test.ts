// Group commit: one transaction per event-loop turn, and nothing told to a worker before it is durable.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { CommittedChannel } from '../../src/node/committed-channel.ts';
import { NodeSql } from '../../src/node/sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function open(name: string, commitTurns?: number) {
  const path = join(dir, `${name}.sqlite`);
  const sql = new NodeSql(path, { groupCommit: true, commitTurns });
  sql.exec('CREATE TABLE t (v INTEGER)');
  sql.commit();
  const reader = new DatabaseSync(path, { readOnly: true });
  const count = () => (reader.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;
  return { sql, reader, count };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('group commit', () => {
  it('commits every write of a turn together when the turn ends', async () => {
    const { sql, reader, count } = open('turn');
    sql.run('INSERT INTO t VALUES (1)');
    sql.transaction(() => sql.run('INSERT INTO t VALUES (2)'));
    assert.equal(sql.pending, true);
    assert.equal(count(), 0, 'another connection sees nothing before the commit');
    await nextTurn();
    assert.equal(sql.pending, false);
    assert.equal(count(), 2);
    reader.close();
    sql.close();
  });

  it('with commitTurns 2, the next turn\'s writes join the same commit; an explicit commit still goes at once', async () => {
    const { sql, reader, count } = open('two-turns', 2);
    let commits = 0;
    sql.onCommit(() => commits++);
    sql.run('INSERT INTO t VALUES (1)');
    await nextTurn();
    assert.equal(sql.pending, true, 'still open after the first turn');
    assert.equal(count(), 0);
    sql.run('INSERT INTO t VALUES (2)');
    await nextTurn();
    assert.equal(sql.pending, false);
    assert.equal(count(), 2);
    assert.equal(commits, 1, 'both turns in one commit');
    sql.run('INSERT INTO t VALUES (3)');
    sql.commit();
    assert.equal(count(), 3, 'commit() does not wait for the turns');
    reader.close();
    sql.close();
  });

  it('a failing unit rolls back alone; the rest of the turn commits', async () => {
    const { sql, reader, count } = open('units');
    sql.run('INSERT INTO t VALUES (1)');
    assert.throws(() =>
      sql.transaction(() => {
        sql.run('INSERT INTO t VALUES (2)');
        sql.transaction(() => sql.run('INSERT INTO t VALUES (3)'));
        throw new Error('unit fails');
      }),
    );
    sql.run('INSERT INTO t VALUES (4)');
    sql.commit();
    assert.deepEqual((reader.prepare('SELECT v FROM t ORDER BY v').all() as Array<{ v: number }>).map((r) => r.v), [1, 4]);
    assert.equal(count(), 2);
    reader.close();
    sql.close();
  });

  it('frames and closes to workers wait for the commit, in order; without pending writes they go at once', () => {
    const { sql, reader } = open('frames');
    const sent: string[] = [];
    const channel = new CommittedChannel(
      { send: (c, t) => sent.push(`${c}:${t}`), close: (c, code) => sent.push(`${c}:close ${code}`) },
      sql,
    );
    channel.send('a', 'idle');
    assert.deepEqual(sent, ['a:idle']);
    sql.run('INSERT INTO t VALUES (1)');
    channel.send('a', 'offer');
    channel.send('b', 'error');
    channel.close('b', 4003, 'duplicate');
    assert.deepEqual(sent, ['a:idle'], 'held while the write is not durable');
    sql.commit();
    assert.deepEqual(sent, ['a:idle', 'a:offer', 'b:error', 'b:close 4003']);
    sql.run('INSERT INTO t VALUES (2)');
    channel.send('a', 'lost');
    assert.equal(channel.discard(), 1, 'after a failed commit nothing of the turn is sent');
    sql.commit();
    assert.equal(sent.length, 4);
    reader.close();
    sql.close();
  });
});

describe('background checkpoints', () => {
  it('a worker thread copies committed WAL frames into the database file; the event loop never checkpoints', { timeout: 30_000 }, async () => {
    const path = join(dir, 'checkpoints.sqlite');
    const sql = new NodeSql(path, { groupCommit: true, backgroundCheckpoints: true });
    assert.equal((sql.db.prepare('PRAGMA wal_autocheckpoint').get() as { wal_autocheckpoint: number }).wal_autocheckpoint, 0);
    sql.exec('CREATE TABLE t (v BLOB)');
    const before = statSync(path).size;
    const checkpointed = new Promise<unknown>((resolve) => sql.onCheckpoint(resolve));
    for (let i = 0; i < 500; i++) sql.run('INSERT INTO t VALUES (randomblob(2000))');
    sql.commit();
    const result = (await checkpointed) as { log: number; checkpointed: number };
    assert.ok(result.log > 250, `the WAL held the turn's pages (${result.log} frames)`);
    assert.equal(result.checkpointed, result.log, 'all of them were copied');
    assert.ok(statSync(path).size > before + 500 * 2000, 'the database file holds the rows now');
    sql.close();
  });
});
