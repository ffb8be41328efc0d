// The streaming multipart/form-data parser (src/app/multipart.ts) over Web streams: boundaries
// split across chunks at every offset, file bytes that look like boundaries, busboy's leniencies
// and limits, malformed bodies, and backpressure (a file part is never collected).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MULTIPART_LIMITS, MultipartError, multipartBoundary, parseMultipart, type MultipartLimits } from '../../src/app/multipart.ts';

const B = 'XyZ-boundary-42';
const enc = new TextEncoder();

function form(parts: Array<{ name: string; value: string | Uint8Array; filename?: string; headers?: string }>, boundary = B): Uint8Array {
  const pieces: Uint8Array[] = [];
  for (const p of parts) {
    const disposition = `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    pieces.push(enc.encode(`--${boundary}\r\n${p.headers ?? disposition}\r\n\r\n`));
    pieces.push(typeof p.value === 'string' ? enc.encode(p.value) : p.value);
    pieces.push(enc.encode('\r\n'));
  }
  pieces.push(enc.encode(`--${boundary}--\r\n`));
  return join(pieces);
}

function join(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A body delivered in chunks of the given sizes (cycled). */
function chunked(bytes: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  let at = 0;
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      const size = sizes[i++ % sizes.length] as number;
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

interface Parsed {
  fields: Map<string, string>;
  files: Array<{ name: string; filename: string; bytes: Uint8Array; ended: boolean }>;
}

async function parse(body: ReadableStream<Uint8Array>, options: { accept?: (name: string) => boolean; limits?: MultipartLimits; boundary?: string } = {}): Promise<Parsed> {
  const out: Parsed = { fields: new Map(), files: [] };
  await parseMultipart(body.getReader(), options.boundary ?? B, {
    field: (name, value) => out.fields.set(name, value),
    file(name, filename) {
      if (options.accept && !options.accept(name)) return undefined;
      const chunks: Uint8Array[] = [];
      const file: Parsed['files'][number] = { name, filename, bytes: new Uint8Array(0), ended: false };
      out.files.push(file);
      return {
        write: (chunk) => void chunks.push(chunk.slice()),
        end: () => {
          file.bytes = join(chunks);
          file.ended = true;
        },
      };
    },
  }, options.limits);
  return out;
}

describe('multipart boundary of a content type', () => {
  it('reads plain and quoted boundaries; none is undefined', () => {
    assert.equal(multipartBoundary(`multipart/form-data; boundary=${B}`), B);
    assert.equal(multipartBoundary(`multipart/form-data; charset=utf-8; boundary="a b;c"`), 'a b;c');
    assert.equal(multipartBoundary('multipart/form-data'), undefined);
    assert.equal(multipartBoundary('multipart/form-data; boundary='), undefined);
  });
});

describe('parseMultipart', () => {
  // A file whose bytes contain CRLF, dashes and most of the delimiter, but never all of it.
  const tricky = join([enc.encode('\r\n--XyZ-boundary-4\r\n--'), new Uint8Array(300).map((_, i) => (i * 7) & 0xff), enc.encode(`\r\n-${B}\r`)]);
  const body = form([
    { name: 'prompt', value: 'a fox ✓' },
    { name: 'ext', value: 'png' },
    { name: 'image', value: tricky, filename: 'r.png' },
    { name: 'attempt', value: '3' },
  ]);

  it('gives the same fields and file bytes whatever the chunking (1-byte chunks split the delimiter at every offset)', async () => {
    for (const sizes of [[body.length], [1], [2], [3, 5, 7], [17], [64], [B.length + 3], [B.length + 4, 1]]) {
      const parsed = await parse(chunked(body, sizes));
      assert.deepEqual(Object.fromEntries(parsed.fields), { prompt: 'a fox ✓', ext: 'png', attempt: '3' }, `chunks ${sizes}`);
      assert.equal(parsed.files.length, 1);
      assert.equal(parsed.files[0]?.filename, 'r.png');
      assert.ok(parsed.files[0]?.ended);
      assert.deepEqual(parsed.files[0]?.bytes, tricky, `file bytes with chunks ${sizes}`);
    }
  });

  it('ignores the preamble and the epilogue, allows padding after a boundary and an empty file', async () => {
    const bytes = enc.encode(`preamble text\r\n--${B}  \t\r\nContent-Disposition: form-data; name="image"; filename=""\r\n\r\n\r\n--${B}--\r\nepilogue`);
    const parsed = await parse(chunked(bytes, [5]));
    assert.equal(parsed.files.length, 1);
    assert.equal(parsed.files[0]?.bytes.length, 0);
    assert.equal(parsed.files[0]?.filename, '');
  });

  it('skips parts without a form-data disposition or a name, files the handler declines, and parts past the limit', async () => {
    const bytes = form([
      { name: 'x', value: 'no disposition', headers: 'Content-Type: text/plain' },
      { name: 'x', value: 'no name', headers: 'Content-Disposition: form-data; filename="a"' },
      { name: 'other', value: 'declined file', filename: 'o.bin' },
      { name: 'kept', value: 'yes' },
      { name: 'late', value: 'past the part limit' },
    ]);
    const parsed = await parse(chunked(bytes, [9]), { accept: (name) => name === 'image', limits: { ...DEFAULT_MULTIPART_LIMITS, parts: 4 } });
    assert.deepEqual(Object.fromEntries(parsed.fields), { kept: 'yes' });
    assert.equal(parsed.files.length, 0);
  });

  it('drops fields past the field limit and cuts a field at its byte cap', async () => {
    const bytes = form([{ name: 'a', value: 'x'.repeat(100) }, { name: 'b', value: 'kept' }, { name: 'c', value: 'dropped' }]);
    const parsed = await parse(chunked(bytes, [13]), { limits: { ...DEFAULT_MULTIPART_LIMITS, fields: 2, fieldBytes: 10 } });
    assert.deepEqual(Object.fromEntries(parsed.fields), { a: 'x'.repeat(10), b: 'kept' });
  });

  it('unescapes quoted parameters', async () => {
    const bytes = enc.encode(`--${B}\r\ncontent-disposition: form-data; name="image"; filename="a \\"b\\".png"\r\n\r\nPNG\r\n--${B}--`);
    const parsed = await parse(chunked(bytes, [4]));
    assert.equal(parsed.files[0]?.filename, 'a "b".png');
    assert.equal(new TextDecoder().decode(parsed.files[0]?.bytes), 'PNG');
  });

  it('rejects a body that ends before its closing boundary, a broken boundary line, and oversized part headers', async () => {
    await assert.rejects(parse(chunked(body.subarray(0, body.length - 10), [100])), (e: Error) => e instanceof MultipartError && /Unexpected end of form/.test(e.message));
    await assert.rejects(parse(chunked(enc.encode('no boundary anywhere'), [3])), MultipartError);
    await assert.rejects(parse(chunked(enc.encode(`--${B}garbage\r\n\r\n--${B}--`), [64])), /not followed by a line break/);
    const longHeader = enc.encode(`--${B}\r\nX-Long: ${'h'.repeat(20_000)}\r\n\r\nv\r\n--${B}--`);
    await assert.rejects(parse(chunked(longHeader, [1000])), /headers are longer than/);
    await assert.rejects(parse(chunked(body, [7]), { boundary: `${B}x` }), /Unexpected end of form/);
  });

  it("passes the body's own error on (the client went away)", async () => {
    let sent = false;
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error('socket hang up'));
        sent = true;
        controller.enqueue(body.subarray(0, 200));
      },
    });
    await assert.rejects(parse(failing), /socket hang up/);
  });

  it('streams a file part: it reads the next chunk only once the sink has taken the last (no collecting)', async () => {
    const file = new Uint8Array(1024 * 1024).fill(1);
    const bytes = form([{ name: 'image', value: file, filename: 'big.bin' }]);
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          const at = pulls++ * 1024;
          if (at >= bytes.length) return controller.close();
          controller.enqueue(bytes.slice(at, at + 1024));
        },
      },
      { highWaterMark: 0 },
    );
    let release: () => void = () => {};
    let received = 0;
    let writes = 0;
    const parsing = parseMultipart(stream.getReader(), B, {
      field() {},
      file: () => ({
        write(chunk) {
          received += chunk.length;
          writes += 1;
          // The third write holds: the parser must wait for it.
          if (writes === 3) return new Promise<void>((resolve) => (release = resolve));
        },
        end() {},
      }),
    });
    parsing.catch(() => undefined);
    for (let turns = 0; writes < 3; turns++) {
      assert.ok(turns < 10_000, 'the parser never reached the file part');
      await new Promise((resolve) => setImmediate(resolve));
    }
    const pullsWhileHeld = pulls;
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pulls, pullsWhileHeld, 'no chunk is read while the sink holds one');
    assert.ok(received < 8 * 1024, `only what was written so far is in hand (${received} bytes)`);
    release();
    await parsing;
    assert.equal(received, file.length);
  });
});
