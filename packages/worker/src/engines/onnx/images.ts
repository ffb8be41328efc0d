import type { Sharp } from 'sharp';
import { loadSharp } from '../shared/sharp.ts';
import { EngineFailure } from '../engine.ts';
import type { Rect } from './composite.ts';
import type { RawImage } from './tensors.ts';

/**
 * Image decoding, resampling and encoding with sharp. Decoded images are 8-bit sRGB, upright (EXIF
 * orientation applied), with 3 channels, or 4 when the input has alpha.
 */

export async function decodeImage(bytes: Uint8Array, what: string): Promise<RawImage> {
  const sharp = await loadSharp();
  try {
    const { data, info } = await sharp(bytes).rotate().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 && info.channels !== 4) throw new Error(`decoded to ${info.channels} channels`);
    return { data, width: info.width, height: info.height, channels: info.channels };
  } catch (error) {
    throw new EngineFailure('bad_input', `${what} is not an image this worker can decode: ${messageOf(error)}`, { retryable: false, cause: error });
  }
}

/**
 * A mask as one 8-bit channel at the image's size (white = repaint). Transparent parts count as
 * black, and a mask of another size is stretched to the image.
 */
export async function decodeMask(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const sharp = await loadSharp();
  try {
    const { data, info } = await sharp(bytes)
      .rotate()
      .flatten({ background: '#000000' })
      .greyscale()
      .resize(width, height, { fit: 'fill' })
      .extractChannel(0)
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height || info.channels !== 1) throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}`);
    return data;
  } catch (error) {
    throw new EngineFailure('bad_input', `maskUrl is not an image this worker can decode: ${messageOf(error)}`, { retryable: false, cause: error });
  }
}

async function fromRaw(image: RawImage): Promise<Sharp> {
  const sharp = await loadSharp();
  const pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels as 1 | 2 | 3 | 4 } });
  // sharp would otherwise widen a single channel to sRGB on output.
  return image.channels === 1 ? pipeline.toColourspace('b-w') : pipeline;
}

/** Stretch to exactly width×height (the model's input size need not keep the aspect ratio). */
export async function resizeRaw(image: RawImage, width: number, height: number): Promise<RawImage> {
  if (image.width === width && image.height === height) return image;
  const { data, info } = await (await fromRaw(image)).resize(width, height, { fit: 'fill' }).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

export async function cropRaw(image: RawImage, rect: Rect): Promise<RawImage> {
  const { data, info } = await (await fromRaw(image)).extract(rect).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Only the first three channels (models take RGB; alpha is handled apart). */
export function rgbOnly(image: RawImage): RawImage {
  if (image.channels === 3) return image;
  const plane = image.width * image.height;
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) data[p * 3 + c] = image.data[p * image.channels + c] ?? 0;
  }
  return { data, width: image.width, height: image.height, channels: 3 };
}

/** One channel of an image (e.g. its alpha). */
export function channelOf(image: RawImage, channel: number): RawImage {
  const plane = image.width * image.height;
  const data = new Uint8Array(plane);
  for (let p = 0; p < plane; p++) data[p] = image.data[p * image.channels + channel] ?? 0;
  return { data, width: image.width, height: image.height, channels: 1 };
}

/** RGB plus a separate alpha plane of the same size → RGBA. */
export function withAlpha(rgb: RawImage, alpha: Uint8Array): RawImage {
  const plane = rgb.width * rgb.height;
  const data = new Uint8Array(plane * 4);
  for (let p = 0; p < plane; p++) {
    data[p * 4] = rgb.data[p * rgb.channels] ?? 0;
    data[p * 4 + 1] = rgb.data[p * rgb.channels + 1] ?? 0;
    data[p * 4 + 2] = rgb.data[p * rgb.channels + 2] ?? 0;
    data[p * 4 + 3] = alpha[p] ?? 0;
  }
  return { data, width: rgb.width, height: rgb.height, channels: 4 };
}

export type OutputExt = 'png' | 'webp';

/** The task's `ext` decides: "webp" gives WebP, anything else PNG (the result says which). */
export function outputExtFor(taskExt: string): OutputExt {
  return taskExt === 'webp' ? 'webp' : 'png';
}

/**
 * Encode the result. `lossless` WebP keeps every pixel as computed (inpainting promises that pixels
 * outside the mask are unchanged) and uses effort 0: several times faster than the default for a
 * slightly larger file. Otherwise WebP is quality 90 with a lossless alpha plane.
 */
export async function encodeImage(image: RawImage, ext: OutputExt, lossless: boolean): Promise<Uint8Array> {
  const pipeline = await fromRaw(image);
  const encoded = ext === 'png' ? pipeline.png() : pipeline.webp(lossless ? { lossless: true, effort: 0 } : { quality: 90, alphaQuality: 100 });
  return new Uint8Array(await encoded.toBuffer());
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
