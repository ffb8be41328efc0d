// Result files on the Cloudflare host (issue 12 item 2): a worker's multipart upload of a result
// larger than two R2 parts goes through the shared upload route (Web streams) into R2 under
// workerd, and reads back whole, by a Range across a part boundary (206), and by HEAD.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { holdImageClaim, uploadResult } from '../../helpers/file-result.ts';
import { startStudioProcess, type StudioProc } from '../../helpers/processes.ts';

const PART = 5 * 1024 * 1024;
let dir: string;
let studio: StudioProc;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-results-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare' });
});

after(async () => {
  await studio.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

it('an 11 MiB result: uploaded multipart into R2, read back whole, by range and by HEAD', { timeout: 90_000 }, async () => {
  const file = randomBytes(2 * PART + 654_321);
  const held = await holdImageClaim(studio, 'large result');
  try {
    const stored = await uploadResult(studio, held, file);
    assert.equal(stored.status, 200, stored.body);
  } finally {
    held.close();
  }
  const path = `${studio.url}/graphics/api/jobs/${held.claim.jobId}/result`;
  const auth = { authorization: `Bearer ${studio.api.token}` };

  const whole = await fetch(path, { headers: auth });
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get('accept-ranges'), 'bytes');
  assert.equal(sha(new Uint8Array(await whole.arrayBuffer())), sha(file));

  const range = await fetch(path, { headers: { ...auth, range: `bytes=${PART - 100}-${PART + 99}` } });
  assert.equal(range.status, 206);
  assert.equal(range.headers.get('content-range'), `bytes ${PART - 100}-${PART + 99}/${file.length}`);
  assert.deepEqual(new Uint8Array(await range.arrayBuffer()), new Uint8Array(file.subarray(PART - 100, PART + 100)));

  const head = await fetch(path, { method: 'HEAD', headers: auth });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(file.length));
});
