import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatByteRatio, formatBytes, formatDuration, formatRate, renderProgressBar } from '../../src/models/index.ts';
import { checkLengths, parseContentRange } from '../../src/models/download.ts';
import { displayUrl } from '../../src/platform/url-policy.ts';

test('formatBytes: decimal units, one decimal below 10, none above', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1000), '1.0 kB');
  assert.equal(formatBytes(35_000_000), '35 MB');
  assert.equal(formatBytes(4.4e9), '4.4 GB');
  assert.equal(formatBytes(1.2e9), '1.2 GB');
  assert.equal(formatBytes(12.4e9), '12 GB');
  assert.equal(formatBytes(9.97e9), '10 GB');
  assert.equal(formatRate(35e6), '35 MB/s');
});

test('formatByteRatio puts both numbers in the unit of the total', () => {
  assert.equal(formatByteRatio(1.2e9, 4e9), '1.2/4.0 GB');
  assert.equal(formatByteRatio(3.6e8, 4e9), '0.4/4.0 GB');
  assert.equal(formatByteRatio(350e6, 512e6), '350/512 MB');
  assert.equal(formatByteRatio(5, 0), '5 B');
});

test('formatDuration', () => {
  assert.equal(formatDuration(300), '300 ms');
  assert.equal(formatDuration(1500), '2 s');
  assert.equal(formatDuration(90_000), '1 min 30 s');
  assert.equal(formatDuration(600_000), '10 min');
  assert.equal(formatDuration(3_900_000), '1 h 5 min');
});

test('renderProgressBar is exactly width characters and clamps', () => {
  assert.equal(renderProgressBar(1, 4, 8), '##......');
  assert.equal(renderProgressBar(0, 4, 5), '.....');
  assert.equal(renderProgressBar(4, 4, 5), '#####');
  assert.equal(renderProgressBar(9, 4, 5), '#####');
  assert.equal(renderProgressBar(-1, 4, 5), '.....');
  assert.equal(renderProgressBar(3, 0, 6), '......', 'an unknown total draws an empty bar');
  assert.equal(renderProgressBar(1, 3, 30).length, 30);
});

test('parseContentRange', () => {
  assert.deepEqual(parseContentRange('bytes 100-199/1000'), { start: 100, end: 199, total: 1000 });
  assert.deepEqual(parseContentRange('bytes 100-199/*'), { start: 100, end: 199, total: undefined });
  assert.equal(parseContentRange('bytes */1000'), undefined);
  assert.equal(parseContentRange('bytes 200-100/1000'), undefined);
  assert.equal(parseContentRange('bytes 0-1000/1000'), undefined, 'end past the total');
  assert.equal(parseContentRange(null), undefined);
});

test('checkLengths: the announced length decides; approxBytes (±10 %) only without a length and a sha256', () => {
  const base = { received: 100, size: 100, sha256: undefined, approxBytes: undefined };
  assert.equal(checkLengths({ ...base, expectedBody: 100 }), undefined);
  assert.match(checkLengths({ ...base, expectedBody: 120 }) ?? '', /received 100 bytes, but the server announced 120/);
  assert.equal(checkLengths({ ...base, expectedBody: undefined, approxBytes: 109 }), undefined);
  assert.equal(checkLengths({ ...base, expectedBody: undefined, approxBytes: 92 }), undefined);
  assert.match(checkLengths({ ...base, expectedBody: undefined, approxBytes: 200 }) ?? '', /expects about 200 B/);
  assert.equal(checkLengths({ ...base, expectedBody: undefined, approxBytes: 200, sha256: 'ab'.repeat(32) }), undefined, 'a pinned sha256 decides instead');
  assert.equal(checkLengths({ ...base, expectedBody: undefined, approxBytes: 0 }), undefined, '0 means unknown');
  assert.match(checkLengths({ ...base, expectedBody: 100, size: 600, expectedSize: 512 }) ?? '', /the resumed file is 600 bytes, but the server says the file has 512/);
  assert.equal(checkLengths({ ...base, expectedBody: 100, size: 512, expectedSize: 512 }), undefined);
});

test('displayUrl drops query strings and credentials (signed CDN URLs are secrets)', () => {
  assert.equal(displayUrl('https://cdn.example.com/blob?X-Amz-Signature=abc#x'), 'https://cdn.example.com/blob?…');
  assert.equal(displayUrl('https://user:pw@host.example/f.bin'), 'https://host.example/f.bin');
  assert.equal(displayUrl('https://huggingface.co/org/repo/resolve/main/f.gguf'), 'https://huggingface.co/org/repo/resolve/main/f.gguf');
});
