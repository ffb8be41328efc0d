import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { processCpuSeconds, processStatusKb } from './machine-cpu.ts';

/** A child process the bench owns: its output tail, its /proc figures, and a stop that always cleans up. */
export interface OwnedChild {
  /** Resolves with the exit code (or signal name) once the child exited. */
  exited: Promise<number | string>;
  /** The last lines the child wrote (stdout and stderr), to explain a failure. */
  outputTail(): string;
  /** Peak resident memory (VmHWM) while it runs, in MiB; undefined where /proc cannot tell. */
  peakRssMb(): number | undefined;
  /** CPU seconds (user + system) used so far; undefined where /proc cannot tell. */
  cpuSeconds(): number | undefined;
  /** SIGTERM (SIGKILL after 5 s), then remove `removeDir`. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Take ownership of a spawned child (stdout/stderr piped): keep its last `tailLines` lines, and
 * kill it and remove `removeDir` when stopped — or, as a last resort, when the bench exits without
 * stopping it (a second Ctrl-C, an uncaught error; only synchronous work is possible there).
 */
export function ownChild(child: ChildProcess, removeDir: string | undefined, tailLines: number): OwnedChild {
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) tail.push(line);
    if (tail.length > tailLines) tail.splice(0, tail.length - tailLines);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const running = () => child.exitCode === null && child.signalCode === null;
  const onExit = () => {
    if (running()) child.kill('SIGKILL');
    if (removeDir) rmSync(removeDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  let stopped = false;
  return {
    exited,
    outputTail: () => tail.join('\n'),
    peakRssMb() {
      if (child.pid === undefined || !running()) return undefined;
      const kb = processStatusKb(child.pid, 'VmHWM');
      return kb === undefined ? undefined : kb / 1024;
    },
    cpuSeconds: () => (child.pid === undefined || !running() ? undefined : processCpuSeconds(child.pid)),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (removeDir) rmSync(removeDir, { recursive: true, force: true });
      process.off('exit', onExit);
    },
  };
}

/** The first executable `name` on PATH, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
