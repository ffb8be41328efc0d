import { Changes } from '../../helpers/wait.ts';
import { killGroup, WorkerProcess, type ExitInfo } from '../../helpers/worker-process.ts';

/** The `[Service]` settings of a unit that decide how its process is started and restarted. */
export interface ServiceUnit {
  execStart: string[];
  environment: Record<string, string>;
  restart: string;
  restartSecs: number;
  restartPreventExitStatus: number[];
  restartForceExitStatus: number[];
  successExitStatus: number[];
  killMode: string;
}

/** Read the `[Service]` section of a unit file (the subset `systemdUnit()` writes). */
export function parseServiceUnit(text: string): ServiceUnit {
  const unit: ServiceUnit = { execStart: [], environment: {}, restart: 'no', restartSecs: 0.1, restartPreventExitStatus: [], restartForceExitStatus: [], successExitStatus: [], killMode: 'control-group' };
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      section = line;
      continue;
    }
    if (section !== '[Service]' || !line.includes('=')) continue;
    const key = line.slice(0, line.indexOf('='));
    const value = line.slice(line.indexOf('=') + 1);
    const statuses = () => value.split(/\s+/).filter(Boolean).map(Number);
    if (key === 'ExecStart') unit.execStart = splitSystemdWords(value);
    else if (key === 'Environment') {
      for (const word of splitSystemdWords(value)) unit.environment[word.slice(0, word.indexOf('='))] = word.slice(word.indexOf('=') + 1);
    } else if (key === 'Restart') unit.restart = value;
    else if (key === 'RestartSec') unit.restartSecs = Number(value);
    else if (key === 'RestartPreventExitStatus') unit.restartPreventExitStatus.push(...statuses());
    else if (key === 'RestartForceExitStatus') unit.restartForceExitStatus.push(...statuses());
    else if (key === 'SuccessExitStatus') unit.successExitStatus.push(...statuses());
    else if (key === 'KillMode') unit.killMode = value;
  }
  return unit;
}

/** Words of an ExecStart=/Environment= value: double quotes with C escapes, `%%` and `$$`. */
export function splitSystemdWords(value: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (value[i] === ' ') i++;
    if (i >= value.length) break;
    let word = '';
    if (value[i] === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\') {
          const next = value[i + 1];
          word += next === 'n' ? '\n' : (next ?? '');
          i += 2;
        } else {
          word += value[i];
          i++;
        }
      }
      i++;
    } else {
      while (i < value.length && value[i] !== ' ') word += value[i++];
    }
    words.push(word.replaceAll('%%', '%').replaceAll('$$', '$'));
  }
  return words;
}

/** Signals systemd counts as a clean exit for Restart=on-failure. */
const CLEAN_SIGNALS = new Set(['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE']);

/**
 * systemd for one unit, as far as a restart goes: it starts ExecStart with the unit's environment,
 * and when the main process exits it kills what is left of the process group (KillMode=mixed's
 * SIGKILL to the rest of the cgroup) and restarts it as Restart=, RestartPreventExitStatus=,
 * RestartForceExitStatus= and SuccessExitStatus= say. `stop()` is `systemctl stop`. A restart
 * count above `maxStarts` is a crash loop: it stops restarting and says so.
 */
export class FakeSystemd {
  readonly runs: WorkerProcess[] = [];
  readonly exits: ExitInfo[] = [];
  crashLoop = false;
  readonly #unit: ServiceUnit;
  readonly #options: { cwd: string; env: NodeJS.ProcessEnv; restartDelayMs: number; maxStarts: number };
  readonly #changes = new Changes();
  #stopping = false;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(unit: ServiceUnit, options: { cwd: string; env: NodeJS.ProcessEnv; restartDelayMs?: number; maxStarts?: number }) {
    this.#unit = unit;
    this.#options = { restartDelayMs: unit.restartSecs * 1000, maxStarts: 6, ...options };
  }

  start(): void {
    const run = new WorkerProcess(this.#unit.execStart, { cwd: this.#options.cwd, env: { ...this.#options.env, ...this.#unit.environment } });
    this.runs.push(run);
    this.#changes.signal();
    void run.exited(24 * 3600_000).then((exit) => this.#onExit(run, exit));
  }

  /** Whether systemd would start the unit again after its main process ended like this. */
  wouldRestart(exit: ExitInfo): boolean {
    const unit = this.#unit;
    if (exit.code !== null && unit.restartPreventExitStatus.includes(exit.code)) return false;
    if (exit.code !== null && unit.restartForceExitStatus.includes(exit.code)) return true;
    const clean = exit.code !== null ? exit.code === 0 || unit.successExitStatus.includes(exit.code) : CLEAN_SIGNALS.has(exit.signal ?? '');
    if (unit.restart === 'always') return true;
    if (unit.restart === 'on-failure') return !clean;
    return false;
  }

  #onExit(run: WorkerProcess, exit: ExitInfo): void {
    this.exits.push(exit);
    if (this.#unit.killMode === 'mixed' || this.#unit.killMode === 'control-group') killGroup(run.pid);
    this.#changes.signal();
    if (this.#stopping || !this.wouldRestart(exit)) return;
    if (this.runs.length >= this.#options.maxStarts) {
      this.crashLoop = true;
      this.#changes.signal();
      return;
    }
    this.#restartTimer = setTimeout(() => this.start(), this.#options.restartDelayMs);
  }

  /** The n-th (0-based) start, once it happened. */
  run(index: number, timeoutMs = 60_000): Promise<WorkerProcess> {
    return this.#changes.waitFor(
      () => {
        if (this.crashLoop) throw new Error(`crash loop: ${this.runs.length} starts; exits ${JSON.stringify(this.exits)}`);
        return this.runs[index];
      },
      `start #${index + 1} of the unit (exits so far: ${JSON.stringify(this.exits)})`,
      timeoutMs,
    );
  }

  /** `systemctl stop`: SIGTERM to the main process, no restart; resolves with its exit. */
  async stop(): Promise<ExitInfo | undefined> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const current = this.runs.at(-1);
    if (!current || current.exitInfo) return current?.exitInfo;
    return current.stop();
  }

  /** Cleanup whatever happened: no restart, SIGKILL to every group it started. */
  kill(): void {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    for (const run of this.runs) run.kill();
  }
}
