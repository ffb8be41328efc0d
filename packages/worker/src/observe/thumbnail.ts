import { loadSharp } from '../engines/shared/sharp.ts';

/** The long side of a job thumbnail (original-spec §3.13). */
export const THUMBNAIL_MAX_SIDE = 384;
const IMAGE_EXTS = new Set(['png', 'jpg', 'jpeg', 'webp', 'gif', 'avif', 'tif', 'tiff', 'bmp']);

/** Whether a result with this extension gets a thumbnail. */
export function isThumbnailable(ext: string): boolean {
  return IMAGE_EXTS.has(ext.toLowerCase());
}

/**
 * A PNG no bigger than `maxSide` on its long side (never enlarged), or null when the bytes are not
 * an image sharp can read. The first frame of an animation is used.
 */
export async function makeThumbnail(bytes: Uint8Array, maxSide = THUMBNAIL_MAX_SIDE): Promise<Buffer | null> {
  const sharp = await loadSharp();
  try {
    return await sharp(bytes, { failOn: 'none' })
      .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true })
      .png()
      .toBuffer();
  } catch {
    return null;
  }
}

/** PNG bytes for any image sharp can read (the OpenAI images API hands out PNGs). */
export async function toPng(bytes: Uint8Array): Promise<Buffer> {
  const sharp = await loadSharp();
  if (isPng(bytes)) return Buffer.from(bytes);
  return sharp(bytes, { failOn: 'none' }).png().toBuffer();
}

function isPng(bytes: Uint8Array): boolean {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  return bytes.length >= signature.length && signature.every((byte, index) => bytes[index] === byte);
}
