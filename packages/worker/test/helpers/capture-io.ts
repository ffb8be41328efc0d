import type { CliIo } from '../../src/cli/io.ts';

/** A CliIo that keeps what a command printed: one line per call, a trailing newline added when missing. */
export function captureIo(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out(text: string) {
      io.stdout += text.endsWith('\n') ? text : `${text}\n`;
    },
    err(text: string) {
      io.stderr += text.endsWith('\n') ? text : `${text}\n`;
    },
  };
  return io;
}
