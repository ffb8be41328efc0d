import { pino, type DestinationStream, type Logger } from 'pino';
import { levelFor, mostVerbose, parseLogFilter, type LogFilter } from './filter.ts';

export { levelFor, parseLogFilter, type Level, type LogFilter } from './filter.ts';
export type { Logger } from 'pino';

import { SECRET_KEYS } from './secrets.ts';

export { SECRET_KEYS, redactSecrets } from './secrets.ts';
export const REDACT_PATHS = [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), 'headers.authorization', 'req.headers.authorization'];

export interface RootLoggerOptions {
  /** Program name, logged as `app`. */
  app: string;
  /** Filter spec; defaults to the STUDIO_WORKER_LOG environment variable. */
  spec?: string;
  /** Where lines go; default stdout (pretty when it is a TTY and pino-pretty is installed). */
  destination?: DestinationStream;
}

export interface LogRoot {
  root: Logger;
  filter: LogFilter;
  /** A child logger for one module, at the level the filter gives that module. */
  child(module: string, bindings?: Record<string, unknown>): Logger;
}

export function createLogRoot(options: RootLoggerOptions): LogRoot {
  const { filter, problems } = parseLogFilter(options.spec ?? process.env.STUDIO_WORKER_LOG);
  const destination = options.destination ?? prettyIfTty();
  const root = pino(
    {
      base: { app: options.app, pid: process.pid },
      level: mostVerbose(filter),
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  for (const problem of problems) root.warn({ op: 'log_filter' }, `STUDIO_WORKER_LOG ${problem}`);
  return {
    root,
    filter,
    child(module, bindings) {
      return root.child({ module, ...bindings }, { level: levelFor(filter, module) });
    },
  };
}

/** On a terminal the console destination (one pretty line per event); elsewhere JSON, written asynchronously. */
function prettyIfTty(): DestinationStream {
  if (process.stdout.isTTY && !process.env.NO_PRETTY_LOGS) return consoleDestination();
  return pino.destination({ fd: 1, sync: false });
}

/** A logger that drops everything (tests and library defaults). */
export const silentLogger: Logger = pino({ level: 'silent' });

import { consoleDestination } from './destinations.ts';

export { consoleDestination, DeferredDestination, fanOut } from './destinations.ts';
export { DEFAULT_LOG_FILE_MAX_BYTES, DEFAULT_LOG_FILES_KEPT, RotatingFileDestination, type RotatingFileOptions } from './rotating-file.ts';
