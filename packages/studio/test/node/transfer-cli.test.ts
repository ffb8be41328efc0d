// `studio export` on a real data directory (its SQLite file) and `studio import` over real HTTP into
// a running studio's POST /graphics/api/admin/import, as child processes of the real CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { ModelEntry } from '@studio-worker/protocol';
import { createStudioCore, exportStudio, StudioExport, type StudioCore } from '../../src/core/index.ts';
import { startStudio, type RunningStudio } from '../../src/node/server.ts';
import { nodeCrypto } from '../../src/node/crypto.ts';
import { NodeSql } from '../../src/node/sqlite.ts';
import { splitExport } from '../../src/node/transfer-cli.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'studio.js');
const TOKEN = 'import-test-token';

function studioCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, STUDIO_TOKEN: '', STUDIO_ADMIN_TOKEN: '' } }, (error, stdout, stderr) => {
      done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function coreOver(sql: NodeSql): StudioCore {
  return createStudioCore({ sql, clock: Date, channel: { send() {}, close() {} }, events: { enabled: false, publish() {} }, crypto: nodeCrypto }, silentLogger);
}

let dir: string;
let target: StudioCore;
let studio: RunningStudio;
let url: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'studio-transfer-'));
  // A studio's data directory as `studio serve` leaves it.
  const sql = new NodeSql(join(dir, 'studio.sqlite'));
  const core = coreOver(sql);
  assert.ok(core.models.create(ModelEntry.parse({ id: 'house-llm', kind: 'llm', source: { engine: 'synthetic', files: [] } })).ok);
  core.registration.createApprovedWorker('gpu-box', 'gpu-box');
  for (let i = 0; i < 5; i++) {
    assert.ok(core.jobs.create({ model: 'house-llm', task: { kind: 'llm', messages: [{ role: 'user', content: `job ${i}` }], maxTokens: 8, temperature: 0.5 }, gameId: 'g', assetName: `a${i}`, priority: 0 }).ok);
  }
  sql.close();

  studio = await startStudio({ dataDir: join(dir, 'target'), port: 0, host: '127.0.0.1', adminToken: TOKEN, log: silentLogger });
  target = studio.core;
  url = studio.url;
});

after(async () => {
  await studio?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('studio export / studio import', () => {
  it('exports a data directory as JSON and imports it into a running studio over HTTP', async () => {
    const exported = await studioCli(['export', '--data-dir', dir]);
    assert.equal(exported.code, 0, exported.stderr);
    const doc = StudioExport.parse(JSON.parse(exported.stdout));
    assert.equal(doc.jobs.length, 5);
    assert.deepEqual(doc.workers.map((w) => w.label), ['gpu-box']);
    assert.match(doc.workers[0]?.tokenHash ?? '', /^[0-9a-f]{64}$/);
    assert.match(exported.stderr, /exported \d+ models, 1 workers and 5 unfinished jobs/);

    const file = join(dir, 'export.json');
    writeFileSync(file, exported.stdout);
    const refused = await studioCli(['import', '--url', url, '--token', 'wrong', file]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /import stopped at part 1 of 1 \(nothing was stored; running it again is safe\): .*admin token/);
    assert.equal(target.jobs.counts().queued, undefined);

    const imported = await studioCli(['import', '--url', url, '--token', TOKEN, file]);
    assert.equal(imported.code, 0, imported.stderr);
    const report = JSON.parse(imported.stdout);
    assert.deepEqual(report.jobs, { added: 5, existing: 0, otherPool: 0 });
    assert.deepEqual(report.workers, { added: 1, existing: 0, otherPool: 0 });
    assert.equal(target.jobs.counts().queued, 5);
    assert.equal(target.models.get('house-llm')?.kind, 'llm');
    // Again: nothing new.
    const again = await studioCli(['import', '--url', url, '--token', TOKEN, file]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).jobs, { added: 0, existing: 5, otherPool: 0 });
    assert.equal(target.jobs.counts().queued, 5);
  });

  it('says what is wrong: no database, a file that is not an export', async () => {
    const missing = await studioCli(['export', '--data-dir', join(dir, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no studio database at .*nope.*studio\.sqlite; pass --data-dir/);
    const file = join(dir, 'not-an-export.json');
    writeFileSync(file, '{"format":"studio-export","version":1}');
    const before = target.jobs.counts();
    const bad = await studioCli(['import', '--url', url, '--token', TOKEN, file]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a studio export this version reads: exportedAt/);
    assert.deepEqual(target.jobs.counts(), before, 'nothing was imported');
  });

  it('splits a large export into parts: models and workers first, the jobs in order', () => {
    const sql = new NodeSql(join(dir, 'studio.sqlite'));
    const doc = exportStudio(sql, Date.now());
    sql.close();
    const parts = splitExport(doc, 1200);
    assert.ok(parts.length > 2, `${parts.length} parts`);
    assert.deepEqual(parts.flatMap((p) => p.jobs.map((j) => j.id)), doc.jobs.map((j) => j.id));
    assert.equal(parts[0]?.models.length, doc.models.length);
    assert.ok(parts.slice(1).every((p) => p.models.length === 0 && p.workers.length === 0 && p.jobs.length > 0));
  });
});
