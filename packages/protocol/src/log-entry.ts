import { z } from 'zod';
import { optional } from './optional.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LogLevel = z.enum(LOG_LEVELS);
export type LogLevel = z.infer<typeof LogLevel>;

/** What the studio keeps of one entry; longer text is clipped, never refused. */
export const MAX_LOG_MESSAGE_CHARS = 8192;
export const MAX_LOG_CATEGORY_CHARS = 64;
/** Entries the studio keeps of one batch; the rest are dropped and counted (the original sends up to 5 000). */
export const MAX_LOG_BATCH_ENTRIES = 5000;

const LEVEL_ALIASES: Record<string, LogLevel> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  err: 'error',
  fatal: 'error',
  critical: 'error',
};

/**
 * The original's `level` is free text ("info"|"warn"|"error" in practice, original-spec §3.8); any
 * string is accepted and read as one of ours, and an unknown one as `info`.
 */
export function normaliseLogLevel(level: string): LogLevel {
  return LEVEL_ALIASES[level.trim().toLowerCase()] ?? 'info';
}

/** `text` cut to at most `max` characters, saying how much was cut. */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = `… [${text.length - max} more characters clipped]`;
  return text.slice(0, Math.max(0, max - note.length)) + note;
}

/**
 * One shipped worker log line (original-spec §3.8). `ts` is RFC 3339 with milliseconds. Lenient as
 * the original is loose: any level string, any message or category length (clipped, not refused),
 * so a log batch never earns an `error` frame (which would end an original worker's session).
 */
export const LogEntry = z.object({
  ts: z.string(),
  level: z.string().transform(normaliseLogLevel),
  category: z.string().transform((c) => clipText(c, MAX_LOG_CATEGORY_CHARS)),
  message: z.string().transform((m) => clipText(m, MAX_LOG_MESSAGE_CHARS)),
  jobId: optional(z.string()),
});
export type LogEntry = z.infer<typeof LogEntry>;
