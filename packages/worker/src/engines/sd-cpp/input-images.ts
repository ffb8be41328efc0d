import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSharp } from '../shared/sharp.ts';
import type { InputUrlPolicy } from '../../platform/url-policy.ts';
import { EngineFailure } from '../engine.ts';
import { extensionFor, fetchImage, type ImageFormat } from '../shared/input-images.ts';
import { decodableBySdCpp } from './sniff.ts';

/** An input image saved where sd.cpp can read it, under the extension its bytes really have. */
export interface InputImage {
  path: string;
  bytes: Uint8Array;
  /** The format as fetched, before any conversion. */
  fetchedAs: ImageFormat;
}

export interface FetchImageOptions {
  signal: AbortSignal;
  /** Origins trusted for input images (`EngineContext.inputUrls`). */
  policy?: InputUrlPolicy;
  fetch?: typeof fetch;
  /** Refuse bigger images (default 64 MiB). */
  maxBytes?: number;
  /** Give up on a slow server after this long (default 60 s). */
  timeoutMs?: number;
}

/**
 * Fetch one of the task's input images under the worker's URL policy (../shared/input-images.ts)
 * and save it as `<dir>/<name>.<real ext>`. WebP and TIFF become PNG, because sd.cpp's image loader
 * (stb_image) reads neither. `field` names the task field in errors.
 */
export async function fetchInputImage(url: string, field: string, dir: string, name: string, options: FetchImageOptions): Promise<InputImage> {
  const fetched = await fetchImage(url, { what: field, ...options });
  let bytes = fetched.bytes;
  let ext = extensionFor(fetched.format);
  if (!decodableBySdCpp(fetched.format)) {
    try {
      bytes = new Uint8Array(await (await loadSharp())(fetched.bytes).png().toBuffer());
    } catch (error) {
      throw new EngineFailure('bad_input', `${field} looks like ${fetched.format.toUpperCase()} but could not be decoded: ${(error as Error).message}`, {
        retryable: false,
        cause: error,
      });
    }
    ext = 'png';
  }
  const path = join(dir, `${name}.${ext}`);
  await writeFile(path, bytes);
  return { path, bytes, fetchedAs: fetched.format };
}
