import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { findOnPath } from './child.ts';
import { BenchError } from './errors.ts';

/**
 * `bench:peers --pin`: which CPUs the bench process and the servers it starts (the studio,
 * redis-server) may run on, so that a run does not depend on where the scheduler happens to put
 * them (bench/README.md, "Where the scheduler puts the two processes").
 *
 * - `none`: wherever the kernel puts them (the default, as a user's machine would);
 * - `split`: this process (simulated workers, BullMQ's consumers and producer) on the first CPU it
 *   may use (CPU 0 on a plain machine), every server on the others: client and server each on a
 *   core of their own;
 * - `one`: all of it on that first CPU.
 *
 * Pinning goes through util-linux's `taskset`: Node has no call for a process's CPU affinity.
 */
export const PIN_MODES = ['none', 'split', 'one'] as const;
export type PinMode = (typeof PIN_MODES)[number];

/** CPU lists in taskset's `-c` syntax. */
export interface CpuPlan {
  mode: Exclude<PinMode, 'none'>;
  bench: string;
  servers: string;
}

export const TASKSET_HINT = 'taskset is not on PATH; --pin needs it. Install util-linux (Debian/Ubuntu: apt-get update && apt-get install -y util-linux).';

/**
 * The CPUs of each side for a mode, from the CPUs this process may use (undefined for `none`): not
 * 0..n-1, since a container's cpuset may hand out, say, CPUs 2 and 3.
 */
export function cpuPlan(mode: PinMode, usable: readonly number[] = usableCpus()): CpuPlan | undefined {
  if (mode === 'none') return undefined;
  const [first, ...rest] = usable;
  if (first === undefined) throw new BenchError('pin_failed', 'could not tell which CPUs this process may use (/proc/self/status has no Cpus_allowed_list); use --pin none');
  if (mode === 'one') return { mode, bench: String(first), servers: String(first) };
  if (rest.length === 0) throw new BenchError('pin_impossible', `--pin split needs at least 2 CPUs; this process may use 1 (CPU ${first}). Use --pin one or --pin none.`);
  return { mode, bench: String(first), servers: formatCpuList(rest) };
}

/** The CPUs this process may run on, in order (the kernel's Cpus_allowed_list). */
export function usableCpus(): number[] {
  const list = allowedCpus(process.pid);
  return list === undefined ? [] : parseCpuList(list);
}

/** `0-2,5` → [0, 1, 2, 5] (the kernel's and taskset's list syntax). */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [from, to = from] = part.split('-').map(Number) as [number, number?];
    for (let cpu = from; cpu <= (to as number); cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** [1, 2, 3, 5] → `1-3,5`. */
export function formatCpuList(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && (cpus[j + 1] as number) === (cpus[j] as number) + 1) j++;
    parts.push(i === j ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function taskset(): string {
  const binary = findOnPath('taskset');
  if (!binary) throw new BenchError('taskset_missing', TASKSET_HINT);
  return binary;
}

/** Pin this process (every thread it has now; later ones inherit it) to `cpus`. */
export function pinThisProcess(cpus: string): void {
  try {
    execFileSync(taskset(), ['--all-tasks', '--cpu-list', '--pid', cpus, String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    if (error instanceof BenchError) throw error;
    const said = String((error as { stderr?: Buffer }).stderr ?? '').trim();
    throw new BenchError('pin_failed', `taskset could not pin this process to CPU ${cpus}: ${said || (error as Error).message}`);
  }
}

/**
 * The command and arguments that start `command` on `cpus` (taskset execs it, so the child keeps
 * the pid it is spawned with and every thread it starts inherits the affinity), or the command as
 * it is when there is nothing to pin.
 */
export function onCpus(cpus: string | undefined, command: string, args: readonly string[]): [string, string[]] {
  return cpus === undefined ? [command, [...args]] : [taskset(), ['--cpu-list', cpus, command, ...args]];
}

/** A process's allowed CPUs as the kernel lists them (`/proc/<pid>/status`, Cpus_allowed_list). */
export function allowedCpus(pid: number): string | undefined {
  try {
    return /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}
