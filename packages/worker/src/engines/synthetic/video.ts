import { loadSharp } from '../shared/sharp.ts';
import { assertSize, SYNTHETIC_WEBP, syntheticPixels } from './image.ts';

export interface SyntheticVideo {
  bytes: Uint8Array;
  ext: 'webp';
  frames: number;
}

export const VIDEO_MAX_FRAMES = 4;
export const VIDEO_FRAME_DELAY_MS = 250;
/** Large videos fall back to fewer frames so encoding stays quick (lossless WebP is slow on big stacks). */
const VIDEO_PIXEL_BUDGET = 4 * 1024 * 1024;

/** How many frames a video of this size gets: up to 4, at least 1. */
export function syntheticVideoFrameCount(width: number, height: number): number {
  return Math.max(1, Math.min(VIDEO_MAX_FRAMES, Math.floor(VIDEO_PIXEL_BUDGET / (width * height))));
}

/**
 * The synthetic "video": a short looping lossless WebP at the requested size. Frame 0 is exactly the
 * synthetic image of the prompt; frame i is the image of `"<prompt> #<i>"`. The task's seconds, fps
 * and requested container are ignored (the original did the same with a single frame).
 */
export async function renderSyntheticVideo(prompt: string, width: number, height: number, signal?: AbortSignal): Promise<SyntheticVideo> {
  const sharp = await loadSharp();
  assertSize(width, height);
  const frames = syntheticVideoFrameCount(width, height);
  const frameBytes = width * height * 3;
  // A single frame is used as is: at 8192² a copy would cost another 200 MB.
  const stack = frames === 1 ? await syntheticPixels(prompt, width, height, signal) : new Uint8Array(frameBytes * frames);
  for (let i = 0; frames > 1 && i < frames; i++) {
    stack.set(await syntheticPixels(i === 0 ? prompt : `${prompt} #${i}`, width, height, signal), i * frameBytes);
  }
  const image =
    frames === 1
      ? sharp(stack, { raw: { width, height, channels: 3 } }).webp(SYNTHETIC_WEBP)
      : sharp(stack, { raw: { width, height: height * frames, channels: 3, pageHeight: height } }).webp({
          ...SYNTHETIC_WEBP,
          loop: 0,
          delay: Array.from({ length: frames }, () => VIDEO_FRAME_DELAY_MS),
        });
  const bytes = await image.toBuffer();
  return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), ext: 'webp', frames };
}
