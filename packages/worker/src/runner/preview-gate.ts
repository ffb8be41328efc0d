import { MAX_PREVIEW_BYTES } from '@studio-worker/protocol';
import type { EnginePreview } from '../engines/engine.ts';
import { loadSharp } from '../engines/shared/sharp.ts';

/** One preview a second per job at most. */
export const PREVIEW_INTERVAL_MS = 1_000;
/** Previews larger than MAX_PREVIEW_BYTES are made this small (longest side) as WebP. */
const SHRUNK_SIDE = 256;

export interface WirePreview {
  mime: 'image/jpeg' | 'image/png' | 'image/webp';
  data: string;
}

/**
 * Live previews of one job on their way to the studio: the newest one an engine reported, made to
 * fit (≤ MAX_PREVIEW_BYTES, shrunk with sharp when bigger), handed out at most once per interval with
 * a progress frame. Older previews that were never sent are simply replaced.
 */
export class PreviewGate {
  readonly #intervalMs: number;
  #ready: WirePreview | undefined;
  #lastTakenAt = -Infinity;
  #shrinking: Promise<void> | undefined;
  #waiting: EnginePreview | undefined;

  constructor(intervalMs = PREVIEW_INTERVAL_MS) {
    this.#intervalMs = intervalMs;
  }

  offer(preview: EnginePreview): void {
    if (preview.bytes.byteLength <= MAX_PREVIEW_BYTES) {
      this.#ready = { mime: preview.mime, data: Buffer.from(preview.bytes.buffer, preview.bytes.byteOffset, preview.bytes.byteLength).toString('base64') };
      return;
    }
    // Shrinking takes a moment: only the newest big preview waits for its turn.
    this.#waiting = preview;
    this.#shrinking ??= this.#shrinkLoop();
  }

  /** Resolves once no big preview is being shrunk. */
  async settled(): Promise<void> {
    await this.#shrinking;
  }

  /** The preview to attach to a frame going out now, if one is due. */
  take(now = performance.now()): WirePreview | undefined {
    if (this.#ready === undefined || now - this.#lastTakenAt < this.#intervalMs) return undefined;
    const ready = this.#ready;
    this.#ready = undefined;
    this.#lastTakenAt = now;
    return ready;
  }

  async #shrinkLoop(): Promise<void> {
    while (this.#waiting !== undefined) {
      const big = this.#waiting;
      this.#waiting = undefined;
      try {
        const sharp = await loadSharp();
        const small = await sharp(big.bytes).resize(SHRUNK_SIDE, SHRUNK_SIDE, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 60 }).toBuffer();
        if (small.byteLength <= MAX_PREVIEW_BYTES) this.#ready = { mime: 'image/webp', data: small.toString('base64') };
      } catch {
        // Not an image sharp can read: a preview is droppable.
      }
    }
    this.#shrinking = undefined;
  }
}
