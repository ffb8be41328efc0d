/** Runs `work` now and then every `everyMs()` after each run ends, until stopped; never keeps the process alive. */
export class Periodic {
  readonly #work: () => Promise<void>;
  readonly #everyMs: () => number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(work: () => Promise<void>, everyMs: () => number) {
    this.#work = work;
    this.#everyMs = everyMs;
  }

  start(): void {
    void this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    await this.#work();
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#everyMs());
    this.#timer.unref();
  }
}
