// Issue 9: studio.sqlite holds prompts and token hashes, and results hold what was generated; they
// are for the studio's user only: the database and its -wal/-shm are 0600, the directories the
// studio creates 0700, whatever the umask, and a database left readable by others is tightened.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { startStudio } from '../../src/node/server.ts';
import { NodeSql } from '../../src/node/sqlite.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('studio data files', () => {
  const root = mkdtempSync(join(tmpdir(), 'studio-modes-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a new data dir: 0700 directories, a 0600 database with 0600 -wal and -shm, even under umask 0', async () => {
    const dataDir = join(root, 'fresh', 'data');
    const umask = process.umask(0);
    let studio;
    try {
      studio = await startStudio({ dataDir, port: 0, host: '127.0.0.1', adminToken: 'modes-admin', log: silentLogger });
      // A write, so the WAL and the shared-memory index exist.
      const created = await fetch(`${studio.url}/graphics/api/jobs`, {
        method: 'POST',
        headers: { authorization: 'Bearer modes-admin', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'synthetic-image', task: { kind: 'image', prompt: 'a private prompt' } }),
      });
      assert.ok(created.status < 300, String(created.status));
      const database = join(dataDir, 'studio.sqlite');
      for (const file of [database, `${database}-wal`, `${database}-shm`]) {
        assert.ok(existsSync(file), file);
        assert.equal(mode(file).toString(8), '600', file);
      }
      for (const dir of [dataDir, join(dataDir, 'results'), join(dataDir, 'results', '.incoming')]) assert.equal(mode(dir).toString(8), '700', dir);
    } finally {
      process.umask(umask);
      await studio?.close();
    }
  });

  it('an existing database readable by others is tightened to 0600 when it is opened', () => {
    const dir = join(root, 'loose');
    mkdirSync(dir);
    const database = join(dir, 'studio.sqlite');
    new NodeSql(database).close();
    chmodSync(database, 0o644);
    writeFileSync(`${database}-wal`, '');
    chmodSync(`${database}-wal`, 0o644);
    const sql = new NodeSql(database);
    try {
      assert.equal(mode(database).toString(8), '600');
      assert.equal(mode(`${database}-wal`).toString(8), '600');
    } finally {
      sql.close();
    }
  });
});
