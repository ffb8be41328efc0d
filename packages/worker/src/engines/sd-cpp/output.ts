import { loadSharp } from '../shared/sharp.ts';
import { EngineFailure } from '../engine.ts';
import { sniffImageFormat } from '../shared/input-images.ts';

/** sd.cpp writes PNG; the result is WebP when the task asks for WebP and PNG otherwise. */
export function resultExtFor(requestedExt: string): 'png' | 'webp' {
  return requestedExt.toLowerCase() === 'webp' ? 'webp' : 'png';
}

/**
 * Turn the image sd.cpp produced into the result: checked to really be an image, converted only
 * when its format differs from the one the task asked for.
 */
export async function toResultImage(bytes: Uint8Array, requestedExt: string, producer: string): Promise<{ bytes: Uint8Array; ext: string }> {
  const sharp = await loadSharp();
  const format = sniffImageFormat(bytes);
  if (format === undefined) {
    throw new EngineFailure('engine_error', `${producer} produced ${bytes.length} bytes that are not an image`, { retryable: true });
  }
  const ext = resultExtFor(requestedExt);
  if (format === ext) return { bytes, ext };
  const image = sharp(bytes);
  const converted = ext === 'webp' ? await image.webp({ quality: 90 }).toBuffer() : await image.png().toBuffer();
  return { bytes: new Uint8Array(converted), ext };
}
