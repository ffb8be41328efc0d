// Retention and backups from outside: real `studio serve`, `studio backup|restore|gc` processes
// and a real worker. A backup taken while the studio serves is consistent and restores into a
// stopped studio; gc deletes result files and keeps the jobs, marked expired.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runStudioCli, startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

let dir: string;
let studio: StudioProc;
let workers: Proc[] = [];
const dataDir = () => join(dir, 'studio');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-retention-'));
  studio = await startStudioProcess({ dataDir: dataDir() });
  workers = await startApprovedWorkers(studio, dir, ['w1']);
});

after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await studio?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => runStudioCli(studio, args);

const images = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ model: 'synthetic-image', task: { kind: 'image', prompt: `${tag} ${i}`, width: 32, height: 32 } }));
const resultFiles = () => readdirSync(join(dataDir(), 'results')).filter((f) => !f.startsWith('.'));

describe('backup, restore and retention', () => {
  it('backs up while serving, restores into a stopped studio, and gc expires results but keeps jobs', async () => {
    const kept = await studio.api.createJobs(images(5, 'kept'));
    await waitFor('5 done', async () => (await studio.api.counts()).done === 5);

    // A backup while jobs keep arriving: the copy is one consistent moment.
    let writing = true;
    const writer = (async () => {
      while (writing) await studio.api.createJobs(images(2, 'later'));
    })();
    const backupFile = join(dir, 'backup.sqlite');
    const backup = await cli(['backup', '--data-dir', dataDir(), '--out', backupFile]);
    writing = false;
    await writer;
    for (let i = 0; i < 3; i++) await studio.api.createJobs(images(2, 'after'));
    assert.equal(backup.code, 0, backup.output);
    const inBackup = Number(backup.output.match(/backup of .* written to .*backup\.sqlite \(\d+ bytes, (\d+) jobs, schema \d+\)/)?.[1]);
    const jobCount = async () => Object.values(await studio.api.counts()).reduce((a, b) => a + b, 0);
    const total = await jobCount();
    assert.ok(inBackup >= 5 && inBackup < total, `${inBackup} jobs in the backup of ${total}`);
    assert.notEqual((await cli(['backup', '--data-dir', dataDir(), '--out', backupFile])).code, 0, 'never overwrites');

    // Restore refuses a running studio, then works once it is stopped.
    const busy = await cli(['restore', backupFile, '--data-dir', dataDir()]);
    assert.notEqual(busy.code, 0);
    assert.match(busy.output, /looks in use .* stop the studio first/);
    await studio.stop();
    const restored = await cli(['restore', backupFile, '--data-dir', dataDir()]);
    assert.equal(restored.code, 0, restored.output);
    assert.match(restored.output, /the previous database is kept as .*before-restore-/);
    studio = await startStudioProcess({ dataDir: dataDir() });
    assert.equal(await jobCount(), inBackup, 'the restored database is the moment of the backup');
    for (const job of kept) assert.equal((await studio.api.result(job.id)).bytes.length > 0, true);

    // gc: every result older than 0 days goes; the jobs stay, marked expired; the files are gone.
    assert.ok(resultFiles().length >= 5);
    const gc = await cli(['gc', '--older-than-days', '0']);
    assert.equal(gc.code, 0, gc.output);
    const report = JSON.parse(gc.output.slice(gc.output.indexOf('{'))) as { expiredJobs: number; freedBytes: number; resultFiles: number };
    assert.ok(report.expiredJobs >= 5);
    assert.ok(report.freedBytes > 0);
    assert.equal(report.resultFiles, 0);
    const job = await studio.api.job(kept[0]?.id as string);
    assert.equal(job.status, 'done');
    assert.ok(job.resultExpiredAt);
    assert.equal(job.result, undefined);
    const res = await studio.api.request('GET', `/jobs/${job.id}/result`);
    assert.equal(res.status, 410);
    assert.equal(((await res.json()) as { error: string }).error, 'result_expired');
    for (const k of kept) assert.ok(!resultFiles().some((f) => f.startsWith(k.id)), `the file of ${k.id} is deleted`);
    const noRetention = await studio.api.request('POST', '/gc', {});
    assert.equal(noRetention.status, 400, 'without a configured retention gc needs an age');
    assert.ok(existsSync(backupFile));
  });

  it('takes the retention from STUDIO_RETENTION_DAYS, and refuses a bad one at start', async () => {
    const configured = await startStudioProcess({ dataDir: join(dir, 'configured'), env: { STUDIO_RETENTION_DAYS: '2' } });
    try {
      assert.equal((await configured.api.json<{ retentionDays: number }>('GET', '/storage')).retentionDays, 2);
      const gc = await configured.api.json<{ olderThanDays: number; expiredJobs: number }>('POST', '/gc', {});
      assert.deepEqual([gc.olderThanDays, gc.expiredJobs], [2, 0]);
    } finally {
      await configured.stop();
    }
    await assert.rejects(startStudioProcess({ dataDir: join(dir, 'bad'), env: { STUDIO_RETENTION_DAYS: 'soon' } }), /STUDIO_RETENTION_DAYS must be a positive number of days \(got "soon"\)/);
  });
});
