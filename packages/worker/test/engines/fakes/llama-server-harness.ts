import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../../helpers/wait.ts';

/** The fake llama-server script next to this file. */
export const FAKE_LLAMA_SERVER = fileURLToPath(new URL('./fake-llama-server.mjs', import.meta.url));

/**
 * Writes `<dir>/llama-server`, an executable that runs the fake with this Node (the fake imports
 * TypeScript, which the system Node may not strip). `exec` keeps one process: the launcher's pid is
 * the fake's pid, as with a real binary.
 */
export async function writeLlamaServerLauncher(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'llama-server');
  await writeFile(path, `#!/bin/sh\nexec '${process.execPath}' '${FAKE_LLAMA_SERVER}' "$@"\n`);
  await chmod(path, 0o755);
  return path;
}

/** One line of the fake's events.jsonl. */
export interface FakeLlamaEvent {
  event: 'start' | 'loaded' | 'request' | 'disconnect' | 'exit' | 'port-taken';
  pid: number;
  model: string;
  port?: number;
  ctx?: number;
  childPid?: number;
  args?: string[];
  reason?: string;
  body?: Record<string, unknown>;
}

export async function readEvents(stateDir: string): Promise<FakeLlamaEvent[]> {
  let text: string;
  try {
    text = await readFile(join(stateDir, 'events.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as FakeLlamaEvent);
}

/** Waits until the fake has written an event matching `match` (the fake is another process: poll its file). */
export function waitForEvent(stateDir: string, match: (event: FakeLlamaEvent) => boolean, what: string): Promise<FakeLlamaEvent> {
  return pollUntil(async () => (await readEvents(stateDir)).find(match), what);
}

/** Scripts the fake's next chat request(s): a ChatScript plus `crashAfterTokens` and `once`. */
export async function scriptFakeLlamaServer(stateDir: string, script: Record<string, unknown>): Promise<void> {
  await writeFile(join(stateDir, 'script.json'), JSON.stringify(script));
}

/** [state, process group] from /proc/<pid>/stat; undefined when there is no such process. */
function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

/**
 * Whether a process is gone: `kill(pid, 0)` fails with ESRCH, or it is a zombie. Zombies count as
 * gone because they are dead; they linger here only because this sandbox's PID 1 does not reap
 * orphans (the fake's helper is reparented to it when the fake dies).
 */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    throw error;
  }
  return procStat(pid)?.state === 'Z';
}

/** Whether no live (non-zombie) process is left in process group `pgid`. */
export async function groupGone(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    throw error;
  }
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z') return false;
  }
  return true;
}

/** Waits until `pid` is gone: SIGKILL is delivered asynchronously, so death follows the signal by a moment. */
export function waitProcessGone(pid: number, what: string): Promise<true> {
  return pollUntil(() => (processGone(pid) ? true : undefined), what, 5_000);
}

/** Waits until process group `pgid` holds no live process. */
export function waitGroupGone(pgid: number, what: string): Promise<true> {
  return pollUntil(async () => ((await groupGone(pgid)) ? true : undefined), what, 5_000);
}
