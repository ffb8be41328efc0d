import { readFile, stat } from 'node:fs/promises';
import type { EngineProgress } from '../engine.ts';

/** How often the preview file is read at most (the wire takes one a second). */
const READ_EVERY_MS = 1_000;
const PNG_END = Buffer.from([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/**
 * The preview PNG sd-cli rewrites in place every step (`--preview-path`). Read after a sampling step
 * is reported, at most once a second, only when it changed and only when whole: sd-cli writes it
 * without a rename, so a read can catch it half-written (no IEND chunk yet) and is then skipped.
 */
export class PreviewFile {
  readonly #path: string;
  readonly #report: (update: EngineProgress) => void;
  #lastReadAt = -Infinity;
  #lastStamp = '';
  #reading = false;
  #closed = false;
  #step: EngineProgress | undefined;

  constructor(path: string, report: (update: EngineProgress) => void) {
    this.#path = path;
    this.#report = report;
  }

  /** A sampling step was reported: send the preview along with it if a new one is there. */
  check(step: EngineProgress): void {
    this.#step = step;
    if (this.#closed || this.#reading || performance.now() - this.#lastReadAt < READ_EVERY_MS) return;
    this.#reading = true;
    void this.#read().finally(() => (this.#reading = false));
  }

  /** Sampling is over (decoding, or the run ended): a read still under way reports nothing. */
  close(): void {
    this.#closed = true;
  }

  async #read(): Promise<void> {
    try {
      const info = await stat(this.#path);
      const stamp = `${info.mtimeMs}:${info.size}`;
      if (stamp === this.#lastStamp) return;
      const bytes = await readFile(this.#path);
      if (bytes.length < 16 || !bytes.subarray(-8).equals(PNG_END)) return;
      // Progress never goes back: a preview read after sampling ended is dropped.
      if (this.#closed || this.#step === undefined) return;
      this.#lastStamp = stamp;
      this.#lastReadAt = performance.now();
      this.#report({ ...this.#step, preview: { mime: 'image/png', bytes: new Uint8Array(bytes) } });
    } catch {
      // Not written yet: there is no preview before the first step.
    }
  }
}
