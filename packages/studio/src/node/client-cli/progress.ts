/** The backfill's counters; `downloaded` counts results on disk (this run and earlier ones). */
export interface ProgressCounts {
  total: number;
  done: number;
  failed: number;
  running: number;
  queued: number;
  downloaded: number;
}

/**
 * One progress line: a bar, the four states, the finishing rate and the time left at that rate.
 * `finishedThisRun` over `elapsedMs` is the rate (jobs finished before this run do not inflate it).
 */
export function progressLine(c: ProgressCounts, finishedThisRun: number, elapsedMs: number, barWidth = 24): string {
  const ended = c.done + c.failed;
  const filled = c.total ? Math.round((ended / c.total) * barWidth) : 0;
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
  const rate = elapsedMs > 0 ? finishedThisRun / (elapsedMs / 1000) : 0;
  const left = c.total - ended;
  const eta = rate > 0 ? formatDuration((left / rate) * 1000) : '?';
  return (
    `${bar} ${ended}/${c.total} · done ${c.done} · failed ${c.failed} · running ${c.running} · queued ${c.queued}` +
    ` · ${rate.toFixed(1)}/s · ETA ${left === 0 ? '0s' : eta} · saved ${c.downloaded}`
  );
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Where progress goes: on a terminal one line redrawn in place (at most 10 times a second);
 * otherwise (a log file, CI) a plain line every `intervalMs`.
 */
export class ProgressReporter {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private lastAt = 0;
  private drawn = false;

  constructor(stream: NodeJS.WriteStream, intervalMs: number) {
    this.stream = stream;
    this.tty = stream.isTTY === true;
    this.intervalMs = this.tty ? 100 : intervalMs;
  }

  update(line: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${line.slice(0, (this.stream.columns || 200) - 1)}`);
      this.drawn = true;
    } else this.stream.write(`${line}\n`);
  }

  /** Print a message on its own line (the progress line is redrawn after it on a terminal). */
  note(message: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[2K');
    this.stream.write(`${message}\n`);
    this.lastAt = 0;
  }

  finish(line: string): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${line}\n`);
    else this.stream.write(`${line}\n`);
  }
}
