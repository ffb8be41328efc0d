import { readFile } from 'node:fs/promises';
import { EXIT_ERROR, EXIT_NO_DAEMON, EXIT_OK, EXIT_USAGE } from '../../platform/exit-codes.ts';
import { daemonLogPath } from '../../observe/log-file.ts';
import type { LogRingEntry, LogRingPage } from '../../observe/log-ring.ts';
import { DaemonUnreachableError, type LocalApiClient } from '../../local-api/index.ts';
import { sleep } from '../../platform/sleep.ts';
import type { CliIo } from '../io.ts';
import { describeRefusal, findDaemon, noDaemonMessage } from './daemon-via-api.ts';

export interface LogsOptions {
  follow?: boolean;
  /** How many of the newest lines to show first (default 50). */
  lines?: string;
  /** The least severe level shown (default info). */
  level?: string;
}

const LEVEL_ORDER: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const FOLLOW_POLL_MS = 1_000;

interface Line {
  ts: string;
  level: string;
  module: string;
  msg: string;
  jobId?: string;
}

/**
 * `studio-worker logs [--follow] [--lines N] [--level L]`: the running daemon's recent log (its
 * in-memory ring, info and up) and, with --follow, new lines every second until Ctrl-C (`signal`).
 * Without a daemon, the tail of `<config dir>/logs/daemon.log` (all levels the daemon wrote).
 */
export async function logsCommand(configPath: string, options: LogsOptions, io: CliIo, signal?: AbortSignal): Promise<number> {
  const count = options.lines === undefined ? 50 : Number(options.lines);
  if (!Number.isInteger(count) || count < 0) {
    io.err(`studio-worker logs: --lines must be a whole number ≥ 0 (got "${options.lines}")`);
    return EXIT_USAGE;
  }
  const level = (options.level ?? 'info').toLowerCase();
  const minimum = LEVEL_ORDER[level];
  if (minimum === undefined) {
    io.err(`studio-worker logs: --level must be one of ${Object.keys(LEVEL_ORDER).join(', ')} (got "${options.level}")`);
    return EXIT_USAGE;
  }
  const shown = (line: Line) => (LEVEL_ORDER[line.level] ?? 0) >= minimum;

  const daemon = await findDaemon(configPath);
  if (!daemon) return fromFile(configPath, count, shown, options.follow === true, io);

  let page: LogRingPage;
  try {
    const answer = await daemon.request<LogRingPage>('GET', '/daemon/logs?after=0');
    if (answer.status !== 200) {
      io.err(describeRefusal('logs', answer));
      return EXIT_ERROR;
    }
    page = answer.body;
  } catch (error) {
    if (!(error instanceof DaemonUnreachableError)) throw error;
    io.err(`studio-worker logs: ${error.message}; showing the log file instead`);
    return fromFile(configPath, count, shown, false, io);
  }
  const recent = page.entries.filter(shown);
  printLines(count === 0 ? [] : recent.slice(-count), io);
  if (!options.follow) return EXIT_OK;
  return follow(daemon, page.seq, shown, io, signal);
}

async function follow(daemon: LocalApiClient, after: number, shown: (line: Line) => boolean, io: CliIo, signal?: AbortSignal): Promise<number> {
  let seq = after;
  while (!signal?.aborted) {
    await sleep(FOLLOW_POLL_MS, signal);
    if (signal?.aborted) break;
    let page: LogRingPage;
    try {
      const answer = await daemon.request<LogRingPage>('GET', `/daemon/logs?after=${seq}`);
      if (answer.status !== 200) {
        io.err(describeRefusal('logs', answer));
        return EXIT_ERROR;
      }
      page = answer.body;
    } catch (error) {
      if (!(error instanceof DaemonUnreachableError)) throw error;
      io.err('studio-worker logs: the daemon stopped answering (it stopped or restarted); run studio-worker logs again to see more');
      return EXIT_OK;
    }
    printLines(page.entries.filter(shown), io);
    seq = page.seq;
  }
  return EXIT_OK;
}

async function fromFile(configPath: string, count: number, shown: (line: Line) => boolean, wantedFollow: boolean, io: CliIo): Promise<number> {
  const path = daemonLogPath(configPath);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    io.err(`studio-worker logs: ${noDaemonMessage(configPath)} (and there is no log file at ${path} yet)`);
    return EXIT_NO_DAEMON;
  }
  io.err(`(${noDaemonMessage(configPath)}; showing ${path})`);
  const lines = text.split('\n').flatMap((raw) => {
    const line = parseFileLine(raw);
    return line && shown(line) ? [line] : [];
  });
  printLines(count === 0 ? [] : lines.slice(-count), io);
  if (wantedFollow) {
    io.err(`studio-worker logs: cannot follow: ${noDaemonMessage(configPath)}`);
    return EXIT_NO_DAEMON;
  }
  return EXIT_OK;
}

function parseFileLine(raw: string): Line | null {
  if (!raw.startsWith('{')) return null;
  try {
    const record = JSON.parse(raw) as Record<string, unknown>;
    if (typeof record.level !== 'string') return null;
    const line: Line = {
      ts: typeof record.time === 'string' ? record.time : '',
      level: record.level,
      module: typeof record.module === 'string' ? record.module : 'worker',
      msg: typeof record.msg === 'string' ? record.msg : '',
    };
    if (typeof record.jobId === 'string') line.jobId = record.jobId;
    return line;
  } catch {
    return null;
  }
}

function printLines(lines: ReadonlyArray<Line | LogRingEntry>, io: CliIo): void {
  for (const line of lines) io.out(formatLine(line));
}

/** `2026-01-02T03:04:05.678Z WARN  [session] reconnecting … (job j-1)` */
export function formatLine(line: Line | LogRingEntry): string {
  const job = line.jobId ? ` (job ${line.jobId})` : '';
  return `${line.ts} ${line.level.toUpperCase().padEnd(5)} [${line.module}] ${line.msg}${job}`;
}

