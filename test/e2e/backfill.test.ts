// The backfill as an operator runs it: `studio jobs submit --file jobs.jsonl --wait --out DIR`
// (a real CLI process) against a real `studio serve` process with two real workers. Interrupted with
// SIGINT midway and run again: no job is made twice, no result is downloaded twice, and every result
// sits in DIR under gameId/assetName with the studio's bytes. On both studio hosts
// (test/helpers/hosts.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JobView } from '@studio-worker/protocol';
import { forEachHost } from '../helpers/hosts.ts';
import { Proc, ROOT, startApprovedWorkers, startStudioProcess, studioCli, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const JOBS = 60;
forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  const workers: Proc[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-backfill-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host });
    await studio.api.json('POST', '/models', { id: 'paced-image', kind: 'image', source: { engine: 'synthetic', cliDefaults: { delayMs: 100 } } });
    await studio.api.json('POST', '/models', { id: 'stuck-image', kind: 'image', source: { engine: 'synthetic', cliDefaults: { delayMs: 120_000 } } });
    workers.push(...(await startApprovedWorkers(studio, dir, ['w1', 'w2'])));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await studio?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (args: string[]) => studioCli(studio, args);

  function filesUnder(root: string): string[] {
    return readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.startsWith('.'))
      .map((d) => relative(root, join(d.parentPath, d.name)))
      .sort();
  }

  async function allJobs(): Promise<JobView[]> {
    return (await studio.api.json<{ jobs: JobView[] }>('GET', '/jobs?limit=500')).jobs;
  }

  describe('studio jobs submit --file (the backfill)', () => {
    it('survives SIGINT and a re-run: every job once, every result once, named by asset', async () => {
      const input = join(dir, 'jobs.jsonl');
      const lines = Array.from({ length: JOBS }, (_, i) =>
        JSON.stringify({ model: 'paced-image', task: { kind: 'image', prompt: `asset ${i}`, width: 32, height: 32, ext: 'png' }, gameId: `game-${i % 3}`, assetName: `sprite-${i}` }),
      );
      writeFileSync(input, `# the backfill\n${lines.join('\n')}\n`);
      const out = join(dir, 'out');
      const args = ['jobs', 'submit', '--file', input, '--wait', '--out', out, '--poll-ms', '100', '--progress-ms', '100'];

      const first = cli(args);
      await first.waitForOutput(/saved (1[5-9]|[2-5]\d)\b/, 30_000);
      const stopped = await first.stop('SIGINT');
      assert.equal(stopped.code, 130, first.output);
      assert.match(first.output, /interrupted: 60\/60 submitted, \d+ saved; run the same command again to resume/);
      assert.match(first.output, /\[#*\.*\] \d+\/60 · done \d+ · failed 0 · running \d+ · queued \d+ · [\d.]+\/s · ETA \S+ · saved \d+/);
      const firstFiles = new Map(filesUnder(out).map((f) => [f, statSync(join(out, f))]));
      assert.ok(firstFiles.size >= 15 && firstFiles.size < JOBS, `interrupted midway: ${firstFiles.size} saved`);
      assert.equal((await allJobs()).length, JOBS);

      const second = cli(args);
      const ended = await second.exited;
      assert.equal(ended.code, 0, second.output);
      assert.match(second.output, /60 jobs: 0 new, 0 already on the studio \(same keys\), 60 submitted by an earlier run/);
      assert.match(second.output, new RegExp(`done 60, failed 0 of 60 in \\S+; 60 results in ${out} \\(${JOBS - firstFiles.size} saved by this run\\)`));

      const jobs = await allJobs();
      assert.equal(jobs.length, JOBS, 'no job was made twice');
      assert.ok(jobs.every((j) => j.status === 'done'));
      const files = filesUnder(out);
      assert.deepEqual(files, Array.from({ length: JOBS }, (_, i) => `game-${i % 3}/sprite-${i}.png`).sort());
      for (const [file, stat] of firstFiles) {
        const now = statSync(join(out, file));
        assert.equal(now.ino, stat.ino, `${file} was not downloaded again`);
        assert.equal(now.mtimeMs, stat.mtimeMs, `${file} was not rewritten`);
      }
      const state = readFileSync(join(out, '.jobs.jsonl.state.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(state.filter((r) => 'file' in r).length, JOBS, 'one download record per job');
      assert.equal(state.filter((r) => 'job' in r).length, JOBS, 'one submission record per job');

      const sample = jobs.find((j) => j.assetName === 'sprite-7') as JobView;
      const result = await studio.api.result(sample.id);
      assert.deepEqual(new Uint8Array(readFileSync(join(out, 'game-1/sprite-7.png'))), result.bytes);
    });

    it('ends with a summary and exit code 1 when a job fails or is cancelled', async () => {
      const input = join(dir, 'mixed.jsonl');
      writeFileSync(
        input,
        [
          { model: 'paced-image', task: { kind: 'image', prompt: 'fine', width: 32, height: 32 }, gameId: 'g', assetName: 'fine' },
          { model: 'stuck-image', task: { kind: 'image', prompt: 'stuck', width: 32, height: 32 }, gameId: 'g', assetName: 'stuck' },
        ]
          .map((j) => JSON.stringify(j))
          .join('\n'),
      );
      const run = cli(['jobs', 'submit', '--file', input, '--wait', '--out', join(dir, 'mixed-out'), '--poll-ms', '100']);
      await run.waitForOutput(/2 jobs: 2 new/);
      const stuck = await waitFor('the stuck job', async () => (await allJobs()).find((j) => j.assetName === 'stuck'));
      await studio.api.json('POST', `/jobs/${stuck.id}/cancel`);
      const ended = await run.exited;
      assert.equal(ended.code, 1, run.output);
      assert.match(run.output, /done 1, failed 1 of 2/);
      assert.match(run.output, new RegExp(`line 2 \\(g/stuck\\): job ${stuck.id} cancelled`));
    });

    it('refuses a file with bad lines before submitting anything (exit 2, every bad line named)', async () => {
      const input = join(dir, 'bad.jsonl');
      writeFileSync(input, `${JSON.stringify({ model: 'paced-image', task: { kind: 'image', prompt: 'ok' } })}\nnot json\n${JSON.stringify({ model: 'paced-image', task: { kind: 'nope' } })}\n`);
      const before = (await allJobs()).length;
      const run = cli(['jobs', 'submit', '--file', input]);
      assert.equal((await run.exited).code, 2, run.output);
      assert.match(run.output, /bad\.jsonl has 2 bad line\(s\); nothing was submitted/);
      assert.match(run.output, /line 2: not valid JSON/);
      assert.match(run.output, /line 3: /);
      assert.equal((await allJobs()).length, before);
    });

    it('one job from flags, download by asset name, and the list/show/workers/models commands', async () => {
      const out = join(dir, 'one');
      const one = cli(['jobs', 'submit', '--model', 'paced-image', '--prompt', 'a lone fox', '--width', '48', '--height', '48', '--game', 'solo', '--asset', 'heroes/fox', '--key', 'fox-1', '--wait', '--out', out]);
      assert.equal((await one.exited).code, 0, one.output);
      const id = one.output.match(/submitted (job-[0-9a-f]+)/)?.[1] as string;
      assert.ok(id, one.output);
      assert.match(one.output, new RegExp(`saved ${out}/solo/heroes/fox.webp`));
      assert.deepEqual(new Uint8Array(readFileSync(join(out, 'solo/heroes/fox.webp'))), (await studio.api.result(id)).bytes);
      const again = cli(['jobs', 'submit', '--model', 'paced-image', '--prompt', 'a lone fox', '--width', '48', '--height', '48', '--game', 'solo', '--asset', 'heroes/fox', '--key', 'fox-1']);
      await again.exited;
      assert.match(again.output, new RegExp(`job ${id} already existed for key fox-1`));

      const show = cli(['jobs', 'show', id]);
      await show.exited;
      assert.equal(JSON.parse(show.output.slice(show.output.indexOf('{'))).assetName, 'heroes/fox');
      const list = cli(['jobs', 'list', '--json', '--limit', '500']);
      await list.exited;
      assert.ok((JSON.parse(list.output.slice(list.output.indexOf('{'))) as { jobs: JobView[] }).jobs.some((j) => j.id === id));
      const download = cli(['jobs', 'download', id, '--out', join(dir, 'again')]);
      assert.equal((await download.exited).code, 0, download.output);
      assert.ok(statSync(join(dir, 'again', 'solo/heroes/fox.webp')).size > 0);

      const fleet = cli(['workers', 'list']);
      await fleet.exited;
      assert.equal(fleet.output.match(/\tonline\t/g)?.length, 2, fleet.output);
      const disabled = cli(['models', 'disable', 'stuck-image']);
      await disabled.exited;
      assert.equal(JSON.parse(disabled.output.slice(disabled.output.indexOf('{'))).enabled, false);
      const refused = cli(['jobs', 'submit', '--model', 'stuck-image', '--prompt', 'x']);
      assert.equal((await refused.exited).code, 1);
      assert.match(refused.output, /studio: .*stuck-image/);
      const noToken = new Proc('studio-cli', [join(ROOT, 'packages/studio/bin/studio.js'), 'jobs', 'list'], { STUDIO_URL: studio.url, STUDIO_TOKEN: '', STUDIO_ADMIN_TOKEN: '' });
      assert.equal((await noToken.exited).code, 1);
      assert.match(noToken.output, /no token: set STUDIO_TOKEN/);
    });

    it('waits through a studio restart in the middle of a backfill and finishes it', async () => {
      const input = join(dir, 'restart.jsonl');
      writeFileSync(input, Array.from({ length: 30 }, (_, i) => JSON.stringify({ model: 'paced-image', task: { kind: 'image', prompt: `restart ${i}`, width: 32, height: 32 }, gameId: 'r', assetName: `a${i}` })).join('\n'));
      const run = cli(['jobs', 'submit', '--file', input, '--wait', '--out', join(dir, 'restart-out'), '--poll-ms', '100', '--progress-ms', '100']);
      await run.waitForOutput(/saved ([5-9]|[12]\d)\b/, 30_000);
      const port = studio.port;
      await studio.stop();
      await run.waitForOutput(/the studio is not answering/, 30_000);
      studio = await startStudioProcess({ dataDir: join(dir, 'studio'), port, host });
      const ended = await run.exited;
      assert.equal(ended.code, 0, run.output);
      assert.match(run.output, /the studio answers again/);
      assert.match(run.output, /done 30, failed 0 of 30/);
    });
  });
});
