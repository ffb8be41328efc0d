import { readFile } from 'node:fs/promises';
import type { Logger } from '@studio-worker/log';
import { Periodic } from './periodic.ts';
import { runCommand, type RunCommand } from './presence.ts';

/**
 * "Pause while another program uses the GPU" (`pause_when_gpu_busy`): a game or an editor starting
 * on this PC makes the worker take no new jobs (the running one finishes) until it is gone.
 * - NVIDIA: `nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader` → `1234, /usr/bin/app`
 *   (only compute contexts: a game using just graphics shows up under Windows WDDM and with MPS; see
 *   docs/operations for the limits);
 * - AMD: `rocm-smi --showpids` → rows `PID  PROCESS NAME  GPU(s)  VRAM USED …` under "KFD process information".
 * Processes of this worker (itself and its engine children) do not count.
 */
export interface GpuProcess {
  pid: number;
  name: string;
}

export function parseNvidiaComputeApps(output: string): GpuProcess[] {
  const out: GpuProcess[] = [];
  for (const line of output.split(/\r?\n/)) {
    const match = /^\s*(\d+)\s*,\s*(.*?)\s*$/.exec(line);
    if (match?.[1] !== undefined) out.push({ pid: Number(match[1]), name: match[2] ?? '' });
  }
  return out;
}

export function parseRocmPids(output: string): GpuProcess[] {
  const out: GpuProcess[] = [];
  for (const line of output.split(/\r?\n/)) {
    const match = /^\s*(\d+)\s+(\S+)\s+\d+/.exec(line);
    if (match?.[1] !== undefined) out.push({ pid: Number(match[1]), name: match[2] ?? '' });
  }
  return out;
}

/** Whether `pid` is `root` or one of its descendants (Linux /proc; elsewhere only `root` itself). */
export async function isOwnProcess(pid: number, root: number): Promise<boolean> {
  let current = pid;
  for (let depth = 0; depth < 64 && current > 1; depth++) {
    if (current === root) return true;
    let stat: string;
    try {
      stat = await readFile(`/proc/${current}/stat`, 'utf8');
    } catch {
      return false;
    }
    current = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return false;
}

/** Other programs on the GPU, from whichever vendor tool answers; undefined when none does. */
export async function otherGpuProcesses(options: { run?: RunCommand; env?: NodeJS.ProcessEnv; self?: number } = {}): Promise<GpuProcess[] | undefined> {
  const run = options.run ?? runCommand;
  const env = options.env ?? process.env;
  const self = options.self ?? process.pid;
  let found: GpuProcess[] | undefined;
  try {
    found = parseNvidiaComputeApps(await run('nvidia-smi', ['--query-compute-apps=pid,process_name', '--format=csv,noheader'], env));
  } catch {
    try {
      found = parseRocmPids(await run('rocm-smi', ['--showpids'], env));
    } catch {
      return undefined;
    }
  }
  const others: GpuProcess[] = [];
  for (const process of found) if (!(await isOwnProcess(process.pid, self))) others.push(process);
  return others;
}

export interface GpuBusyOptions {
  log: Logger;
  sampleMs: () => number;
  /** Sample only while this is true (pause_when_gpu_busy on). */
  wanted: () => boolean;
  onChange: () => void;
  read?: () => Promise<GpuProcess[] | undefined>;
}

/** Samples other GPU programs every `sampleMs` while `wanted()`. */
export class GpuBusyMonitor {
  readonly #options: GpuBusyOptions;
  #others: GpuProcess[] = [];
  readonly #loop: Periodic;
  #warned = false;

  constructor(options: GpuBusyOptions) {
    this.#options = options;
    this.#loop = new Periodic(() => this.sample(), options.sampleMs);
  }

  /** Other programs using the GPU at the last sample (empty when the check is off). */
  get others(): readonly GpuProcess[] {
    return this.#others;
  }

  start(): void {
    this.#loop.start();
  }

  stop(): void {
    this.#loop.stop();
  }

  async sample(): Promise<void> {
    let others: GpuProcess[] = [];
    if (this.#options.wanted()) {
      const read = await (this.#options.read ?? (() => otherGpuProcesses()))();
      if (read === undefined && !this.#warned) {
        this.#warned = true;
        this.#options.log.warn({ op: 'gpu_busy' }, 'pause_when_gpu_busy is on but neither nvidia-smi nor rocm-smi answered; the worker cannot see other GPU programs');
      }
      others = read ?? [];
    }
    const before = this.#others.map((p) => p.pid).join(',');
    this.#others = others;
    if (others.map((p) => p.pid).join(',') === before) return;
    if (others.length > 0) this.#options.log.info({ op: 'gpu_busy', others }, `another program uses the GPU (${describeGpuProcesses(others)}); taking no new jobs until it is gone`);
    else if (before !== '') this.#options.log.info({ op: 'gpu_busy' }, 'the GPU is free of other programs again; taking jobs');
    this.#options.onChange();
  }
}

export function describeGpuProcesses(others: readonly GpuProcess[]): string {
  return others
    .slice(0, 3)
    .map((p) => `${p.name.split(/[\\/]/).pop() || 'unknown'} pid ${p.pid}`)
    .join(', ')
    .concat(others.length > 3 ? `, and ${others.length - 3} more` : '');
}
