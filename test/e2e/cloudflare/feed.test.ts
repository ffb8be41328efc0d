// The dashboard's realtime feed on the Cloudflare host is a hibernatable socket too: after the
// object is evicted from memory (the launcher's test-only hook), the feed is restored from its
// attachment and still gets the next job's event, without reconnecting.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { WebSocket } from 'ws';
import { startStudioProcess, type StudioProc } from '../../helpers/processes.ts';

let dir: string;
let studio: StudioProc;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-feed-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare' });
});

after(async () => {
  await studio.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('a dashboard feed survives the object being evicted and gets the next job event', { timeout: 60_000 }, async () => {
  const ws = new WebSocket(`${studio.url.replace('http', 'ws')}/graphics/api/realtime`, ['studio-dashboard', `bearer.${studio.api.token}`]);
  const batches: Array<{ events: Array<{ type: string; job?: { id: string } }>; hello?: boolean }> = [];
  let notify: (() => void) | undefined;
  ws.on('message', (data) => {
    batches.push(JSON.parse(data.toString()));
    notify?.();
  });
  let closed = false;
  ws.on('close', () => (closed = true));
  const until = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 15_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(batches).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        notify = resolve;
        setTimeout(resolve, 500);
      });
    }
  };
  await until(() => batches.some((b) => b.hello), 'the feed hello');

  const evicted = await fetch(`${studio.url}/__test/evict?pool=default`, { method: 'POST' });
  assert.equal(evicted.status, 200);
  const [job] = await studio.api.createJobs([{ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'seen live' }] } }]);
  assert.ok(job);
  await until(() => batches.some((b) => b.events.some((e) => e.type === 'job' && e.job?.id === job.id)), `an event for job ${job.id}`);
  assert.equal(closed, false, 'the feed was not reconnected: the same socket got the event');
  ws.close(1000);
});
