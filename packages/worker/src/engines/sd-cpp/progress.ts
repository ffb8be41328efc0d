import { StringDecoder } from 'node:string_decoder';

/**
 * What one piece of sd.cpp output says. sd.cpp logs `[INFO ] file.cpp:123 - message` lines (INFO,
 * WARN, DEBUG on stdout, ERROR on stderr) and redraws a progress bar in place with `\r`:
 * `  |=====>     | 3/8 - 1.23s/it` (sampling, VAE tiles; `it/s` when fast) or
 * `  |#####      | 120/480 - 512.00MB/s` (tensor loading: `#` without a head since sd.cpp 563137a5,
 * `=` before). Anything else is plain text.
 */
export type OutputEvent =
  | { kind: 'bar'; step: number; total: number; unit: 'iteration' | 'bytes' }
  | { kind: 'log'; level: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR'; text: string }
  | { kind: 'text'; text: string };

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const BAR = /\|[=#> ]*\|\s*(\d+)\/(\d+)\s*-\s*[0-9.]+\s*(s\/it|it\/s|[KMG]?B\/s)\s*$/;
const LOG = /^\[(DEBUG|INFO|WARN|ERROR)\s*\]\s?(.*)$/;
/** A line longer than this is cut, so a runaway child cannot grow our memory. */
const MAX_LINE = 4096;

export function parseOutputLine(raw: string): OutputEvent | undefined {
  const line = raw.replace(ANSI, '').trimEnd();
  if (line.trim() === '') return undefined;
  const bar = BAR.exec(line);
  if (bar !== null) {
    const unit = bar[3] === 's/it' || bar[3] === 'it/s' ? 'iteration' : 'bytes';
    return { kind: 'bar', step: Number(bar[1]), total: Number(bar[2]), unit };
  }
  const log = LOG.exec(line.trimStart());
  if (log !== null) return { kind: 'log', level: log[1] as 'INFO', text: (log[2] ?? '').trim() };
  return { kind: 'text', text: line.trim() };
}

/**
 * Splits a byte stream into lines at `\n` and at the `\r` a progress bar redraws with. A bar that
 * is complete but not yet followed by `\r` is reported at once: sd.cpp flushes each redraw whole,
 * and waiting for the next one would make every step look one step late (and fool the watchdog).
 */
export class OutputSplitter {
  readonly #decoder = new StringDecoder('utf8');
  readonly #onLine: (line: string) => void;
  #pending = '';
  /** How much of `#pending` was already reported as a complete bar. */
  #reported = 0;

  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine;
  }

  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const parts = (this.#pending + text).split(/\r\n|\r|\n/);
    this.#pending = parts.pop() ?? '';
    parts.forEach((part, i) => this.#emit(i === 0 ? part.slice(this.#reported) : part));
    if (parts.length > 0) this.#reported = 0;
    if (this.#reported === 0 && BAR.test(this.#pending.replace(ANSI, '').trimEnd())) {
      this.#emit(this.#pending);
      this.#reported = this.#pending.length;
    }
    if (this.#pending.length > MAX_LINE) {
      this.#emit(this.#pending.slice(this.#reported));
      this.#pending = '';
      this.#reported = 0;
    }
  }

  end(): void {
    const rest = this.#pending + this.#decoder.end();
    this.#emit(rest.slice(this.#reported));
    this.#pending = '';
    this.#reported = 0;
  }

  #emit(line: string): void {
    if (line.replace(ANSI, '').trim() !== '') this.#onLine(line.slice(0, MAX_LINE));
  }
}

/** Where one generation stands, as the engine reports it and the watchdogs see it. */
export type TrackedUpdate =
  | { phase: 'loading'; step?: number; total?: number; message: string }
  | { phase: 'generating'; step: number; total: number }
  | { phase: 'encoding'; step?: number; total?: number; message: string };

/**
 * Turns sd.cpp output events into progress. Tensor-loading bars (bytes/s) are loading; sampling
 * bars (s/it, it/s) are generating steps until sd.cpp says sampling is done ("sampling completed",
 * "decoding N latents"); after that, bars count VAE tiles while the image is decoded.
 */
export class ProgressTracker {
  #decoding = false;

  /** Start over for the next job on a resident server. */
  reset(): void {
    this.#decoding = false;
  }

  get decoding(): boolean {
    return this.#decoding;
  }

  read(event: OutputEvent): TrackedUpdate | undefined {
    if (event.kind === 'bar') {
      if (event.unit === 'bytes') return { phase: 'loading', step: event.step, total: event.total, message: 'loading tensors' };
      if (this.#decoding) return { phase: 'encoding', step: event.step, total: event.total, message: 'decoding latents' };
      return { phase: 'generating', step: event.step, total: event.total };
    }
    if (event.kind === 'log' && /sampling completed|decoding \d+ latents?/i.test(event.text)) {
      if (this.#decoding) return undefined;
      this.#decoding = true;
      return { phase: 'encoding', message: 'decoding latents' };
    }
    return undefined;
  }
}
