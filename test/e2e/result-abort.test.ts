// Clients that go away in the middle of a result download (a Ctrl-C'd backfill, a closed browser
// tab) must not take the studio down, on either host (test/helpers/hosts.ts; on Cloudflare the
// result streams from R2). Before the fix, undici closed the response stream a second
// time after the client's cancel and the studio process died of an uncaught ERR_INVALID_STATE.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { JobView } from '@studio-worker/protocol';
import { forEachHost } from '../helpers/hosts.ts';
import { startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  let workers: Proc[] = [];
  let jobs: JobView[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-abort-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host });
    workers = await startApprovedWorkers(studio, dir, ['w1']);
    jobs = await studio.api.createJobs(Array.from({ length: 5 }, (_, i) => ({ model: 'synthetic-image', task: { kind: 'image', prompt: `abort ${i}`, width: 512, height: 512 } })));
    await waitFor('5 results', async () => (await studio.api.counts()).done === 5);
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await studio?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('survives 200 result downloads aborted after the headers or the first chunk', async () => {
    for (let round = 0; round < 200; round++) {
      const abort = new AbortController();
      const res = await fetch(`${studio.url}/graphics/api/jobs/${jobs[round % jobs.length]?.id}/result`, { headers: { authorization: `Bearer ${studio.api.token}` }, signal: abort.signal });
      assert.equal(res.status, 200);
      if (round % 2) await (res.body as ReadableStream<Uint8Array>).getReader().read();
      abort.abort();
      assert.ok(studio.proc.alive, `the studio died after ${round + 1} aborted downloads:\n${studio.proc.output.slice(-1500)}`);
    }
    const whole = await studio.api.result(jobs[0]?.id as string);
    assert.ok(whole.bytes.length > 1000, 'and still serves whole results');
  });
});
