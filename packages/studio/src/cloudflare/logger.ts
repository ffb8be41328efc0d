import { pino } from 'pino';
import type { Logger } from '@studio-worker/log';
import { redactSecrets } from '@studio-worker/log/secrets';

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/**
 * The `@studio-worker/log` Logger shape under workerd: pino's browser build (what the bundle's
 * `browser` condition picks), writing one JSON line per event to the console, which
 * `wrangler tail` / Workers Logs collect. The browser build has no `redact`, so the secret fields
 * the Node host's pino censors are censored in `write` instead (the same list, log/secrets.ts).
 */
export function workerdLogger(level: string | undefined, bindings: Record<string, unknown>): Logger {
  const root = pino({
    level: level && LEVELS.has(level) ? level : 'info',
    // The embedded host's line shape: `level` as its label, `time` as ISO text.
    timestamp: pino.stdTimeFunctions.isoTime,
    browser: {
      asObject: true,
      formatters: { level: (label: string) => ({ level: label }) },
      write: (record: object) => console.log(JSON.stringify(redactSecrets(record as Record<string, unknown>))),
    },
  });
  return root.child(bindings) as unknown as Logger;
}
