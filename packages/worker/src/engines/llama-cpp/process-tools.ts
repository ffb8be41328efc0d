import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable among `candidates`, then `name` on PATH; undefined when there is none. */
export async function findExecutable(name: string, candidates: readonly string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const candidate of candidates) if (await isExecutable(candidate)) return candidate;
  const extensions = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue;
    for (const extension of extensions) {
      const path = join(dir, name + extension);
      if (await isExecutable(path)) return path;
    }
  }
  return undefined;
}

/**
 * The last lines a process wrote, for failure messages ("the last stderr line") and diagnostics.
 * Partial lines are held until their newline (or until the stream ends).
 */
export class OutputTail {
  readonly #lines: string[] = [];
  readonly #max: number;
  #partial = '';

  constructor(max = 50) {
    this.#max = max;
  }

  /** Adds text; returns the complete lines it finished. */
  push(text: string): string[] {
    const parts = (this.#partial + text).split(/\r?\n|\r/);
    this.#partial = parts.pop() ?? '';
    const lines = parts.filter((line) => line.trim() !== '');
    for (const line of lines) this.#remember(line);
    return lines;
  }

  /** The stream ended: a last line without a newline still counts. */
  end(): string[] {
    const last = this.#partial;
    this.#partial = '';
    if (last.trim() === '') return [];
    this.#remember(last);
    return [last];
  }

  get lines(): readonly string[] {
    return this.#lines;
  }

  /** The line that best explains a failure: the last one that mentions an error, else the last one. */
  lastErrorLine(): string | undefined {
    const lines = this.#partial.trim() === '' ? this.#lines : [...this.#lines, this.#partial];
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i] ?? '';
      if (/error|failed|invalid|cannot|unable|abort|exception|out of memory/i.test(line)) return line.trim();
    }
    return lines.at(-1)?.trim();
  }

  #remember(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.shift();
  }
}
