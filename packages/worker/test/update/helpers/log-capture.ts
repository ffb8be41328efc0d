import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { Changes } from '../../helpers/wait.ts';

export interface LogLine {
  level: number;
  op?: string;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger whose lines the test can read back. */
export function captureLog(): { log: Logger; lines: LogLine[]; messages(): string[]; waitFor(predicate: (message: string) => boolean, timeoutMs?: number): Promise<string> } {
  const lines: LogLine[] = [];
  const changes = new Changes();
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      changes.signal();
      done();
    },
  });
  const log = pino({ level: 'debug' }, stream);
  const messages = () => lines.map((line) => line.msg);
  return {
    log,
    lines,
    messages,
    /** The first logged message that matches, now or once it is logged. */
    waitFor: (predicate, timeoutMs) => changes.waitFor(() => messages().find(predicate), 'a log message', timeoutMs),
  };
}
