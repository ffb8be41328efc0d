import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Changes, pollUntil } from './wait.ts';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LogLine {
  level: string;
  msg: string;
  module?: string;
  [key: string]: unknown;
}

/**
 * A worker process started from a command line (the daemon from the sources, an installed bin, a
 * unit's ExecStart), with its output captured; in its own process group unless told otherwise.
 * Waits end on output or exit, never on a sleep.
 */
export class WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout = '';
  stderr = '';
  exitInfo: ExitInfo | undefined;
  /** Its output pipes are closed too: nothing more will be logged. */
  #outputClosed = false;
  readonly #ownGroup: boolean;
  readonly #changes = new Changes();

  constructor(argv: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; ownGroup?: boolean }) {
    const [command, ...args] = argv;
    if (!command) throw new Error('an empty command line');
    this.#ownGroup = options.ownGroup ?? true;
    this.child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: this.#ownGroup });
    this.pid = this.child.pid ?? -1;
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.#changes.signal();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#changes.signal();
    });
    this.child.on('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      this.#changes.signal();
    });
    this.child.on('close', () => {
      this.#outputClosed = true;
      this.#changes.signal();
    });
  }

  logs(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as LogLine];
        } catch {
          return [];
        }
      });
  }

  async waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs = 30_000): Promise<LogLine> {
    try {
      return await this.#changes.waitFor(
        () => {
          const found = this.logs().find(predicate);
          if (found) return found;
          if (this.exitInfo && this.#outputClosed) throw new Error(`the process exited (${JSON.stringify(this.exitInfo)}) before logging ${what}`);
          return undefined;
        },
        `log: ${what}`,
        timeoutMs,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${this.outputTail()}`, { cause: error });
    }
  }

  /** The end of what it wrote, for a failure message. */
  outputTail(chars = 4000): string {
    return `stderr:\n${this.stderr.slice(-chars)}\nstdout:\n${this.stdout.slice(-chars)}`;
  }

  waitForStderr(pattern: RegExp, what: string, timeoutMs = 30_000): Promise<string> {
    return this.#changes.waitFor(() => pattern.exec(this.stderr)?.[0], `stderr: ${what}`, timeoutMs);
  }

  exited(timeoutMs = 30_000): Promise<ExitInfo> {
    return this.#changes.waitFor(() => this.exitInfo, `process ${this.pid} to exit`, timeoutMs);
  }

  /** SIGTERM (the daemon's graceful stop), then wait for the exit. */
  async stop(timeoutMs = 30_000): Promise<ExitInfo> {
    if (!this.exitInfo) this.child.kill('SIGTERM');
    return this.exited(timeoutMs);
  }

  /** SIGKILL to its whole process group, or to it alone when it has none of its own (cleanup). */
  kill(): void {
    if (this.#ownGroup) killGroup(this.pid);
    else if (!this.exitInfo) this.child.kill('SIGKILL');
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function killGroup(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** A process that is not our child (a detached successor): SIGTERM its group, and SIGKILL what is left. */
export async function stopGroup(pid: number, graceMs = 15_000): Promise<void> {
  killGroup(pid, 'SIGTERM');
  await pollUntil(() => (isAlive(pid) ? undefined : true), `pid ${pid} to exit`, graceMs).catch(() => killGroup(pid));
}

export async function readJson<T = Record<string, unknown>>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** `<config dir>/started.json` once it names `pid`. */
export function startedBy(configDir: string, pid: number, timeoutMs = 30_000): Promise<{ version: string; pid: number; updatedFrom?: string }> {
  return pollUntil(
    async () => {
      const record = await readJson<{ version: string; pid: number; updatedFrom?: string }>(join(configDir, 'started.json'));
      return record?.pid === pid ? record : undefined;
    },
    `started.json of pid ${pid}`,
    timeoutMs,
  );
}

/** The local API of the daemon with this pid (`<config dir>/local-api.json`). */
export function localApiOf(configDir: string, pid: number, timeoutMs = 30_000): Promise<{ url: string; token: string; pid: number }> {
  return pollUntil(
    async () => {
      const discovery = await readJson<{ url: string; token: string; pid: number }>(join(configDir, 'local-api.json'));
      return discovery?.pid === pid ? discovery : undefined;
    },
    `local-api.json of pid ${pid}`,
    timeoutMs,
  );
}

/** The environment for a worker under test: ours without npm's run variables and without any STUDIO_WORKER_* setting. */
export function cleanWorkerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key.startsWith('STUDIO_WORKER_') || key === 'INVOCATION_ID') continue;
    env[key] = value;
  }
  return { ...env, NO_PRETTY_LOGS: '1', ...extra };
}
