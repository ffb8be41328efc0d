import { spawn, type ChildProcess } from 'node:child_process';
import { signalTree } from '../../platform/process-tree.ts';
import { valueWithin } from '../../platform/sleep.ts';
import { OutputSplitter } from './progress.ts';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface GroupChildOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Every line the child prints, stdout and stderr alike (sd.cpp prints progress on stdout, errors on stderr). */
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
}

/** How long a child gets after SIGTERM before its whole group is SIGKILLed. */
const TERM_GRACE_MS = 250;
/** How long we wait for the exit event after SIGKILL before giving up on it. */
const EXIT_WAIT_MS = 2_000;
const MAX_REMEMBERED_LINE = 300;

/** Process groups still alive, so an exiting worker never leaves one behind. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pgid of liveGroups) signalTree(pgid, 'SIGKILL');
  });
}

/**
 * A child process in its own process group (POSIX: `detached`, so the group id is its pid), so
 * that cancel and the watchdogs can kill it together with anything it spawned.
 */
export class GroupChild {
  readonly pid: number;
  /** Resolves once the child has exited and its output is drained. */
  readonly exited: Promise<ChildExit>;
  readonly #child: ChildProcess;
  #exit: ChildExit | undefined;
  #lastStderr: string | undefined;
  #lastStdout: string | undefined;

  constructor(command: readonly string[], args: readonly string[], options: GroupChildOptions) {
    const [program, ...lead] = command;
    if (program === undefined) throw new Error('empty command');
    this.#child = spawn(program, [...lead, ...args], {
      cwd: options.cwd,
      env: options.env,
      detached: process.platform !== 'win32',
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const spawned = new Promise<void>((resolve, reject) => {
      this.#child.once('spawn', resolve);
      this.#child.once('error', reject);
    });
    // A later 'error' (a failed kill) must not crash the worker as an unhandled event.
    this.#child.on('error', () => undefined);
    // A failed spawn has no pid; ENOENT arrives as an 'error' event.
    this.pid = this.#child.pid ?? -1;
    if (this.pid > 0) {
      liveGroups.add(this.pid);
      installExitHook();
    }
    const remember = (stream: 'stdout' | 'stderr') => (line: string) => {
      const clean = line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trim();
      if (clean !== '') {
        const short = clean.length > MAX_REMEMBERED_LINE ? `${clean.slice(0, MAX_REMEMBERED_LINE)}…` : clean;
        if (stream === 'stderr') this.#lastStderr = short;
        else this.#lastStdout = short;
      }
      options.onLine(line, stream);
    };
    const out = new OutputSplitter(remember('stdout'));
    const err = new OutputSplitter(remember('stderr'));
    this.#child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    this.#child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    this.exited = new Promise<ChildExit>((resolve) => {
      this.#child.once('close', (code, signal) => {
        out.end();
        err.end();
        liveGroups.delete(this.pid);
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
      spawned.catch((error: unknown) => {
        liveGroups.delete(this.pid);
        const message = error instanceof Error ? error.message : String(error);
        this.#lastStderr = `could not start ${program}: ${message}`;
        this.#exit = { code: null, signal: null };
        resolve(this.#exit);
      });
    });
  }

  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  /** The last line the child printed on stderr, else on stdout (what a failure message quotes). */
  lastLine(): string {
    return this.#lastStderr ?? this.#lastStdout ?? 'no output';
  }

  /**
   * Stop the child and everything in its group: SIGTERM, a short grace, then SIGKILL to the whole
   * group (always, because a grandchild may outlive the leader), then wait for the exit event.
   */
  async kill(graceMs = TERM_GRACE_MS): Promise<ChildExit> {
    if (this.pid <= 0) return this.exited;
    if (process.platform === 'win32') {
      signalTree(this.pid, 'SIGKILL');
      return this.exited;
    }
    if (!this.hasExited) {
      signalTree(this.pid, 'SIGTERM');
      await valueWithin(this.exited, graceMs);
    }
    signalTree(this.pid, 'SIGKILL');
    liveGroups.delete(this.pid);
    const exit = await valueWithin(this.exited, EXIT_WAIT_MS);
    return exit ?? { code: null, signal: 'SIGKILL' };
  }
}

/** "exited with 1" / "was killed by SIGSEGV" — for messages. */
export function describeExit(exit: ChildExit): string {
  if (exit.code !== null) return `exited with ${exit.code}`;
  if (exit.signal !== null) return `exited with ${exit.signal}`;
  return 'could not be started';
}
