/**
 * A streaming multipart/form-data parser over a Web `ReadableStream<Uint8Array>` (RFC 7578), for
 * result uploads on every host (Node's request body, a Worker's). Fields arrive whole (bounded);
 * a file part is handed out chunk by chunk as it arrives, never collected, and the parser reads
 * the next chunk of the body only once the file's sink has taken the last one (backpressure).
 *
 * Replaces busboy in the studio, whose Node streams a Worker does not have; its limits and its
 * leniencies are kept: parts without a Content-Disposition or a name are skipped, fields past
 * the limit are dropped, a field longer than its cap is cut, transport padding after a boundary
 * is allowed, the preamble and epilogue are ignored.
 */

export interface MultipartLimits {
  /** Fields kept; later ones are dropped. */
  fields: number;
  /** Bytes kept of one field's value; the rest is dropped. */
  fieldBytes: number;
  /** Parts looked at (fields and files); later ones are skipped. */
  parts: number;
  /** Bytes of one part's header block; more is a malformed body. */
  headerBytes: number;
}

export const DEFAULT_MULTIPART_LIMITS: MultipartLimits = { fields: 20, fieldBytes: 1024 * 1024, parts: 30, headerBytes: 16 * 1024 };

/** The body is not well-formed multipart (or ends before its closing boundary). */
export class MultipartError extends Error {}

/** Where a file part's bytes go. Its promises may reject (a full disk): the parse then rejects with that error. */
export interface FileSink {
  write(chunk: Uint8Array): Promise<void> | void;
  /** The part ended normally. */
  end(): Promise<void> | void;
}

export interface MultipartHandler {
  field(name: string, value: string): void;
  /** A part with a `filename` begins: answer where its bytes go, or undefined to skip it. */
  file(name: string, filename: string): FileSink | undefined;
}

/** The boundary of a `multipart/form-data` content type (quoted or not), or undefined. */
export function multipartBoundary(contentType: string): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;"]{1,200}))/i.exec(contentType);
  return match ? (match[1] ?? match[2]) : undefined;
}

const CR = 13;
const LF = 10;
const DASH = 45;

type State = 'preamble' | 'boundary' | 'headers' | 'body' | 'end';

/**
 * Read `reader` to its end, calling `handler` per part. Resolves once the closing boundary has been
 * seen (the rest, an epilogue, is read and dropped) and every file sink has ended. Rejects with a
 * MultipartError when the body is malformed or ends early, with the sink's error when a sink
 * fails, with the stream's error when the body errors (the client went away). After a rejection
 * the reader may have more to read; the caller decides whether to drain or cancel it.
 */
export async function parseMultipart(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  boundary: string,
  handler: MultipartHandler,
  limits: MultipartLimits = DEFAULT_MULTIPART_LIMITS,
): Promise<void> {
  const delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
  const decoder = new TextDecoder();
  // The first boundary has no CRLF before it: start the buffer with one so every boundary is alike.
  let buf: Uint8Array = new Uint8Array([CR, LF]);
  let state = 'preamble' as State;
  let parts = 0;
  let fields = 0;
  /** The current part: a field being collected, a file being streamed, or a part being skipped. */
  let part: { kind: 'skip' } | { kind: 'field'; name: string; chunks: Uint8Array[]; bytes: number } | { kind: 'file'; sink: FileSink } = { kind: 'skip' };

  const emit = async (data: Uint8Array): Promise<void> => {
    if (data.length === 0) return;
    if (part.kind === 'file') await part.sink.write(data);
    else if (part.kind === 'field' && part.bytes < limits.fieldBytes) {
      const kept = data.subarray(0, limits.fieldBytes - part.bytes);
      part.chunks.push(kept);
      part.bytes += kept.length;
    }
  };
  const endPart = async (): Promise<void> => {
    const ended = part;
    part = { kind: 'skip' };
    if (ended.kind === 'file') await ended.sink.end();
    else if (ended.kind === 'field') handler.field(ended.name, decoder.decode(concat(ended.chunks, ended.bytes)));
  };
  const beginPart = (head: string): void => {
    parts += 1;
    part = { kind: 'skip' };
    if (parts > limits.parts) return;
    const disposition = /^content-disposition[ \t]*:(.*)$/im.exec(head)?.[1];
    if (disposition === undefined || !/^\s*form-data\s*(;|$)/i.test(disposition)) return;
    const params = dispositionParams(disposition);
    const name = params.get('name');
    if (name === undefined) return;
    const filename = params.get('filename');
    if (filename !== undefined) {
      const sink = handler.file(name, filename);
      if (sink) part = { kind: 'file', sink };
    } else if (fields < limits.fields) {
      fields += 1;
      part = { kind: 'field', name, chunks: [], bytes: 0 };
    }
  };

  /** Process what `buf` holds; answers false when it needs more bytes. */
  const step = async (): Promise<boolean> => {
    switch (state) {
      case 'preamble':
      case 'body': {
        const at = indexOf(buf, delimiter, 0);
        if (at < 0) {
          // Keep what could be the start of a delimiter split across chunks (usually nothing, so
          // the next chunk is used as it comes, without a copy).
          const keep = partialMatchAtEnd(buf, delimiter);
          if (state === 'body') await emit(buf.subarray(0, buf.length - keep));
          buf = buf.subarray(buf.length - keep);
          return false;
        }
        if (state === 'body') {
          await emit(buf.subarray(0, at));
          await endPart();
        }
        buf = buf.subarray(at + delimiter.length);
        state = 'boundary';
        return true;
      }
      case 'boundary': {
        // `--` closes the body; else optional transport padding and CRLF open a part.
        if (buf.length < 2) return false;
        if (buf[0] === DASH && buf[1] === DASH) {
          state = 'end';
          return true;
        }
        let i = 0;
        while (i < buf.length && (buf[i] === 32 || buf[i] === 9)) i++;
        if (i + 2 > buf.length) {
          if (i > 1024) throw new MultipartError('a boundary line is followed by too much padding');
          return false;
        }
        if (buf[i] !== CR || buf[i + 1] !== LF) throw new MultipartError('a boundary is not followed by a line break');
        buf = buf.subarray(i + 2);
        state = 'headers';
        return true;
      }
      case 'headers': {
        // An empty header block is allowed: the blank line then comes first.
        const end = buf[0] === CR && buf[1] === LF ? -2 : indexOf(buf, HEADER_END, 0);
        if (end === -1) {
          if (buf.length > limits.headerBytes) throw new MultipartError(`a part's headers are longer than ${limits.headerBytes} bytes`);
          return false;
        }
        if (end > limits.headerBytes) throw new MultipartError(`a part's headers are longer than ${limits.headerBytes} bytes`);
        beginPart(end < 0 ? '' : decoder.decode(buf.subarray(0, end)));
        buf = buf.subarray(end < 0 ? 2 : end + HEADER_END.length);
        state = 'body';
        return true;
      }
      case 'end':
        buf = EMPTY;
        return false;
    }
  };

  for (;;) {
    while (await step());
    const { done, value } = await reader.read();
    if (done) break;
    if (state === 'end') continue; // the epilogue: read and dropped
    buf = buf.length === 0 ? value : concat([buf, value], buf.length + value.length);
  }
  if (state !== 'end') throw new MultipartError('Unexpected end of form');
}

const HEADER_END = new Uint8Array([CR, LF, CR, LF]);
const EMPTY = new Uint8Array(0);

/** The first index of `needle` in `haystack` at or after `from`, or -1. Candidates are found by the native indexOf of the first byte. */
function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0] as number;
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(first, from); i !== -1 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** The length of the longest end of `haystack` that is a start of `needle` (shorter than all of it). */
function partialMatchAtEnd(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0] as number;
  for (let i = haystack.indexOf(first, Math.max(0, haystack.length - needle.length + 1)); i !== -1; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (i + j < haystack.length && haystack[i + j] === needle[j]) j++;
    if (i + j === haystack.length) return j;
  }
  return 0;
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** `name` and `filename` of `form-data; name="a"; filename="b.png"` (quoted strings unescaped). */
function dispositionParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  const pattern = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (let m = pattern.exec(value); m !== null; m = pattern.exec(value)) {
    const key = (m[1] as string).toLowerCase();
    if (!params.has(key)) params.set(key, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] as string).trim());
  }
  return params;
}
