import { loadSharp } from '../shared/sharp.ts';
import { EngineFailure } from '../engine.ts';
import { sniffImageFormat, type ImageFormat } from '../shared/input-images.ts';

/**
 * Images out of HTTP engines: re-encoding a server's result into the extension the task asked for,
 * and the base64 such servers speak. Fetching input images lives in ../shared/input-images.ts.
 * Engine-agnostic: the OpenAI-compatible engine uses it too.
 */

const EXT_OF: Record<ImageFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp', gif: 'gif', bmp: 'bmp', tiff: 'tiff' };

/** The encodings a result can be converted into; other requested extensions get the bytes as they are. */
const CONVERTIBLE: Readonly<Record<string, 'png' | 'jpeg' | 'webp'>> = { png: 'png', webp: 'webp', jpg: 'jpeg', jpeg: 'jpeg' };

/**
 * Lossy at high quality: generated images are photographic, and lossless WebP of a 1024² render is
 * several megabytes for no visible gain.
 */
const WEBP_OPTIONS = { quality: 90 } as const;
const JPEG_OPTIONS = { quality: 92 } as const;

/**
 * A server's image as the task's `ext`: passed through when it already is that format, converted
 * with sharp when the task asks for png, webp or jpg, and left as it is (with its real extension)
 * for anything else. Throws a retryable engine_error when the bytes are not an image at all.
 */
export async function encodeImageAs(bytes: Uint8Array, requestedExt: string, source: string): Promise<{ bytes: Uint8Array; ext: string }> {
  const sharp = await loadSharp();
  const actual = sniffImageFormat(bytes);
  if (actual === undefined) {
    throw new EngineFailure('engine_error', `${source} returned ${bytes.length} bytes that are not an image`, { retryable: true });
  }
  const ext = requestedExt.toLowerCase();
  const wanted = CONVERTIBLE[ext];
  if (wanted === undefined) return { bytes, ext: EXT_OF[actual] };
  if (wanted === actual) return { bytes, ext };
  try {
    const image = sharp(bytes);
    const out =
      wanted === 'webp' ? await image.webp(WEBP_OPTIONS).toBuffer() : wanted === 'jpeg' ? await image.jpeg(JPEG_OPTIONS).toBuffer() : await image.png().toBuffer();
    return { bytes: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), ext };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new EngineFailure('engine_error', `${source} returned a ${actual} image that could not be converted to ${requestedExt}: ${message}`, {
      retryable: true,
      cause: error,
    });
  }
}

/** Base64 (standard alphabet) of bytes, as A1111 and OpenAI-style servers expect images inline. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Bytes of a base64 image a server returned, tolerating a `data:image/...;base64,` prefix. */
export function fromBase64(text: string): Uint8Array {
  const comma = text.startsWith('data:') ? text.indexOf(',') : -1;
  return new Uint8Array(Buffer.from(comma >= 0 ? text.slice(comma + 1) : text, 'base64'));
}
