import { createRequire } from 'node:module';
import { pino, type DestinationStream } from 'pino';

/**
 * One log line to several destinations. A destination that throws never keeps the line from the
 * others (a full disk must not silence stdout).
 */
export function fanOut(...destinations: DestinationStream[]): DestinationStream {
  return {
    write(line: string): void {
      for (const destination of destinations) {
        try {
          destination.write(line);
        } catch {
          // Each destination reports its own trouble; a log call never throws.
        }
      }
    },
  };
}

/**
 * Lines that arrive before the real destination exists are held (up to `limit`, the oldest dropped)
 * and written once `attach` is called; `discard` drops them for good. The daemon logs before it owns
 * its config dir, and only the lock holder may write (and rotate) the log file there.
 */
export class DeferredDestination implements DestinationStream {
  readonly #limit: number;
  #held: string[] = [];
  #target: DestinationStream | null = null;
  #discarded = false;

  constructor(limit = 1000) {
    this.#limit = limit;
  }

  write(line: string): void {
    if (this.#target) return void this.#target.write(line);
    if (this.#discarded) return;
    this.#held.push(line);
    if (this.#held.length > this.#limit) this.#held.shift();
  }

  attach(target: DestinationStream): void {
    this.#target = target;
    const held = this.#held;
    this.#held = [];
    for (const line of held) target.write(line);
  }

  discard(): void {
    this.#discarded = true;
    this.#held = [];
  }
}

const requireHere = createRequire(import.meta.url);

/**
 * stdout, written synchronously (nothing is lost on exit; SonicBoom retries a busy pipe). On a TTY
 * each event is one pretty line (pino-pretty, when it is installed; `NO_PRETTY_LOGS=1` keeps JSON):
 * a terminal is read by a person, and a start banner must not drown in field dumps. Elsewhere the
 * lines stay JSON, for log collectors (and the log file always gets the full JSON).
 */
export function consoleDestination(fd = 1): DestinationStream {
  const out = pino.destination({ fd, sync: true });
  const pretty = fd === 1 && process.stdout.isTTY && !process.env.NO_PRETTY_LOGS ? loadPrettyFormatter() : null;
  if (!pretty) return out;
  return {
    write(line: string): void {
      out.write(pretty(line));
    },
  };
}

function loadPrettyFormatter(): ((line: string) => string) | null {
  try {
    const { prettyFactory } = requireHere('pino-pretty') as { prettyFactory: (options: Record<string, unknown>) => (input: string) => string };
    const format = prettyFactory({
      colorize: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,app,hostname,module',
      messageFormat: '{if module}[{module}] {end}{msg}',
      singleLine: true,
    });
    return (line) => {
      try {
        return format(line);
      } catch {
        return line;
      }
    };
  } catch {
    // pino-pretty is a dev dependency; without it, plain JSON is fine.
    return null;
  }
}
