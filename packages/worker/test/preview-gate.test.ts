import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import sharp from 'sharp';
import { MAX_PREVIEW_BYTES } from '@studio-worker/protocol';
import { PreviewGate } from '../src/runner/preview-gate.ts';

it('a preview goes out at most once per interval, the newest one; a big one is shrunk to fit 64 KB as WebP', async () => {
  const gate = new PreviewGate(1_000);
  const small = (n: number) => ({ mime: 'image/jpeg' as const, bytes: new Uint8Array([0xff, 0xd8, 0xff, n]) });
  assert.equal(gate.take(0), undefined, 'nothing offered yet');
  gate.offer(small(1));
  gate.offer(small(2));
  assert.deepEqual(Buffer.from(gate.take(10)?.data ?? '', 'base64')[3], 2, 'the newest');
  gate.offer(small(3));
  assert.equal(gate.take(500), undefined, 'not twice within a second');
  assert.equal(Buffer.from(gate.take(1_010)?.data ?? '', 'base64')[3], 3);

  // An A1111 current_image: a full-size PNG of noise, far over 64 KB.
  const noise = await sharp(randomBytes(512 * 512 * 3), { raw: { width: 512, height: 512, channels: 3 } }).png().toBuffer();
  assert.ok(noise.length > MAX_PREVIEW_BYTES);
  gate.offer({ mime: 'image/png', bytes: noise });
  await gate.settled();
  const shrunk = gate.take(5_000);
  assert.equal(shrunk?.mime, 'image/webp');
  const bytes = Buffer.from(shrunk?.data ?? '', 'base64');
  assert.ok(bytes.length <= MAX_PREVIEW_BYTES, `${bytes.length} bytes`);
  const meta = await sharp(bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 256, 256]);
});
