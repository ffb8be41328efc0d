import { setImmediate } from 'node:timers/promises';
import { loadSharp } from '../shared/sharp.ts';
import { EngineFailure } from '../engine.ts';
import { throwIfAborted } from './pacing.ts';
import { sha256Bytes } from './digest.ts';
import { stampLabel } from './pixel-font.ts';

/** The encodings the synthetic image comes in. */
export type SyntheticImageExt = 'png' | 'webp';

export interface SyntheticImage {
  bytes: Uint8Array;
  ext: SyntheticImageExt;
}

/**
 * Lossless, so decoded pixels are exactly the formula's; effort 0 encodes about 4× faster than the
 * default for ~20 % more bytes, which suits an engine whose job is to be quick in CI.
 */
export const SYNTHETIC_WEBP = { lossless: true, effort: 0 } as const;

/** The protocol's largest image side; also keeps the raw buffer (w × h × 3) within reason. */
const MAX_SIDE = 8192;

/** Rows painted between two looks at the abort signal: about a million pixels, a few milliseconds. */
const BAND_PIXELS = 1 << 20;

/**
 * The procedural pattern (original-spec §6.2) at the requested size, without the label: four
 * concentric square rings from the prompt's hash, overlaid with a sine/cosine ripple.
 * Packed RGB, row-major. With a `signal`, the rows are painted in bands and the event loop turns
 * between them, so a cancel is seen within milliseconds even at 8192².
 */
export async function syntheticPattern(prompt: string, width: number, height: number, signal?: AbortSignal): Promise<Uint8Array> {
  assertSize(width, height);
  const d = sha256Bytes(prompt);
  // Ring r's colour is palette[3r..3r+2].
  const palette = Uint8Array.from({ length: 12 }, (_, i) => d[i] ?? 0);
  const cx = width / 2;
  const cy = height / 2;
  // Per-column and per-row terms are computed once; the expressions are the same as inline, so the
  // floating-point results are identical to evaluating the formula pixel by pixel.
  const sinX = new Float64Array(width);
  const distX = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    sinX[x] = Math.sin(x / 24);
    distX[x] = Math.abs(x - cx) / (width / 2);
  }
  const rgb = new Uint8Array(width * height * 3);
  const band = Math.max(1, Math.floor(BAND_PIXELS / width));
  let offset = 0;
  for (let y0 = 0; y0 < height; y0 += band) {
    if (signal) {
      throwIfAborted(signal);
      if (y0 > 0) await setImmediate();
    }
    for (let y = y0; y < Math.min(height, y0 + band); y++) {
      const cosY = Math.cos(y / 24);
      const distY = Math.abs(y - cy) / (height / 2);
      // The formula with its helpers spelled out for this range: the daemon paints every job of a
      // backlog on its own thread (512²: 5.4–5.7 ms before, 3.6–3.7 after). cheb is in [0, 1], so
      // floor(cheb × 6) is `| 0`; |phase| ≤ 24 × 1.3, inside i8 and never NaN, so Rust's `as i8 as u8`
      // is `| 0` (truncation toward zero) then `& 255`; `u8::saturating_add` is the comparison. The
      // tests check every pixel against the formula written out independently.
      for (let x = 0; x < width; x++) {
        const dx = distX[x] as number;
        const cheb = dx > distY ? dx : distY;
        const r = (cheb * 6) | 0;
        const base = (r > 3 ? 3 : r) * 3;
        const phase = ((sinX[x] as number) + cosY) * 12;
        const red = (palette[base] as number) + ((phase | 0) & 255);
        const green = (palette[base + 1] as number) + (((phase * 0.7) | 0) & 255);
        const blue = (palette[base + 2] as number) + (((phase * 1.3) | 0) & 255);
        rgb[offset++] = red > 255 ? 255 : red;
        rgb[offset++] = green > 255 ? 255 : green;
        rgb[offset++] = blue > 255 ? 255 : blue;
      }
    }
  }
  if (signal) throwIfAborted(signal);
  return rgb;
}

/** The pattern with the "SYNTHETIC" label stamped in (the label is skipped on tiny images). */
export async function syntheticPixels(prompt: string, width: number, height: number, signal?: AbortSignal): Promise<Uint8Array> {
  const rgb = await syntheticPattern(prompt, width, height, signal);
  stampLabel(rgb, width, height);
  return rgb;
}

/**
 * The synthetic engine's image for a prompt, encoded. Pure and deterministic, so tests and the
 * studio's chaos oracle can regenerate the exact bytes a worker uploaded.
 */
export async function renderSyntheticImage(prompt: string, width: number, height: number, ext: string, signal?: AbortSignal): Promise<SyntheticImage> {
  const sharp = await loadSharp();
  const rgb = await syntheticPixels(prompt, width, height, signal);
  // Only PNG and WebP are produced; any other request (jpg, …) gets PNG and says so through `ext`,
  // because a lossy format would make the output depend on the encoder build.
  const encoding: SyntheticImageExt = ext === 'webp' ? 'webp' : 'png';
  const image = sharp(rgb, { raw: { width, height, channels: 3 } });
  const bytes = encoding === 'webp' ? await image.webp(SYNTHETIC_WEBP).toBuffer() : await image.png().toBuffer();
  return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), ext: encoding };
}

export function assertSize(width: number, height: number): void {
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_SIDE) {
      throw new EngineFailure('bad_input', `synthetic image ${name} must be an integer from 1 to ${MAX_SIDE}, got ${value}`, {
        retryable: false,
      });
    }
  }
}
