import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { EngineFailure } from '../../src/engines/engine.ts';
import { encodeImageAs, fetchImageBytes, sniffImageFormat } from '../../src/engines/a1111/index.ts';
import { inputUrlPolicy } from '../../src/platform/url-policy.ts';
import { FileServer, failureOf } from './fakes/a1111-harness.ts';

const solid = (format: 'png' | 'jpeg' | 'webp') =>
  sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 9, g: 99, b: 199 } } })
    .toFormat(format)
    .toBuffer();

test('sniffing reads magic bytes, not names', async () => {
  assert.equal(sniffImageFormat(await solid('png')), 'png');
  assert.equal(sniffImageFormat(await solid('jpeg')), 'jpeg');
  assert.equal(sniffImageFormat(await solid('webp')), 'webp');
  assert.equal(sniffImageFormat(Buffer.from('GIF89a....')), 'gif');
  assert.equal(sniffImageFormat(Buffer.from('<html>')), undefined);
});

test('encodeImageAs: same format passes through byte for byte, png/webp/jpg convert, other extensions keep the real format', async () => {
  const png = await solid('png');
  const same = await encodeImageAs(png, 'png', 'test');
  assert.equal(same.ext, 'png');
  assert.ok(Buffer.from(same.bytes).equals(png));
  const webp = await encodeImageAs(png, 'webp', 'test');
  assert.equal(webp.ext, 'webp');
  assert.deepEqual(await sharp(webp.bytes).metadata().then((m) => [m.format, m.width, m.height]), ['webp', 20, 10]);
  const jpeg = await encodeImageAs(png, 'jpeg', 'test');
  assert.equal(jpeg.ext, 'jpeg');
  assert.equal(sniffImageFormat(jpeg.bytes), 'jpeg');
  const gif = await encodeImageAs(png, 'gif', 'test');
  assert.deepEqual([gif.ext, sniffImageFormat(gif.bytes)], ['png', 'png']);
  const failure = await failureOf(encodeImageAs(Buffer.from('{"oops":1}'), 'png', 'the server'));
  assert.equal(failure.code, 'engine_error');
  assert.equal(failure.retryable, true);
  assert.match(failure.message, /the server returned 10 bytes that are not an image/);
});

test('fetchImageBytes: a redirect without Location, an oversized body and a refused data: URL are bad_input', async (t) => {
  const files = await FileServer.start();
  t.after(() => files.close());
  const png = await solid('png');
  files.files.set('/real.png', { body: png });
  files.files.set('/hop', { status: 302, body: new Uint8Array() });
  const signal = new AbortController().signal; // FileServer's /hop is a 302 without a Location
  const policy = inputUrlPolicy([files.url]); // the loopback file server is trusted explicitly

  assert.ok(Buffer.from(await fetchImageBytes(`${files.url}/real.png`, { what: 'init image', signal, policy, allowDataUrl: false })).equals(png));
  const noLocation = await failureOf(fetchImageBytes(`${files.url}/hop`, { what: 'init image', signal, policy, allowDataUrl: false }));
  assert.equal(noLocation.code, 'bad_input');
  const tooBig = await failureOf(fetchImageBytes(`${files.url}/real.png`, { what: 'init image', signal, policy, allowDataUrl: false, maxBytes: 10 }));
  assert.equal(tooBig.code, 'bad_input');
  assert.match(tooBig.message, /more than the 10/);
  const data = await failureOf(fetchImageBytes(`data:image/png;base64,${png.toString('base64')}`, { what: 'result', signal, allowDataUrl: false }));
  assert.match(data.message, /not a data: URL/);
});

test('fetchImageBytes: a redirect from a trusted origin to plain http elsewhere is refused; within it, followed', async (t) => {
  const { createServer } = await import('node:http');
  const png = await solid('png');
  const server = createServer((req, res) => {
    if (req.url === '/to-public') res.writeHead(302, { location: 'http://example.com/cat.png' }).end();
    else if (req.url === '/to-local') res.writeHead(301, { location: '/final.png' }).end();
    else res.writeHead(200, { 'content-type': 'image/png' }).end(png);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const signal = new AbortController().signal;
  const policy = inputUrlPolicy([base]);

  const refused = await failureOf(fetchImageBytes(`${base}/to-public`, { what: 'mask', signal, policy, allowDataUrl: true }));
  assert.ok(refused instanceof EngineFailure);
  assert.equal(refused.code, 'bad_input');
  assert.match(refused.message, /mask must be https .*example\.com/);
  assert.ok(Buffer.from(await fetchImageBytes(`${base}/to-local`, { what: 'mask', signal, policy, allowDataUrl: true })).equals(png));
});

test('fetchImageBytes: an abort is `cancelled`, a 5xx is retryable', async (t) => {
  const files = await FileServer.start();
  t.after(() => files.close());
  files.files.set('/broken.png', { status: 503, body: new Uint8Array() });
  const policy = inputUrlPolicy([files.url]);
  const broken = await failureOf(fetchImageBytes(`${files.url}/broken.png`, { what: 'init image', signal: new AbortController().signal, policy, allowDataUrl: false }));
  assert.equal(broken.code, 'engine_error');
  assert.equal(broken.retryable, true);
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  const aborted = await failureOf(fetchImageBytes(`${files.url}/broken.png`, { what: 'init image', signal: controller.signal, policy, allowDataUrl: false }));
  assert.equal(aborted.code, 'cancelled');
});
