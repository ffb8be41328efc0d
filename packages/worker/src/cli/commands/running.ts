import { daemonPaths } from '../../config/index.ts';
import { isProcessAlive } from '../../platform/lock.ts';
import { readDaemonState, type DaemonState } from '../../daemon/state-file.ts';

/** state.json of the daemon for this config, when that daemon is still alive. */
export async function runningDaemonState(configPath: string): Promise<DaemonState | null> {
  const state = await readDaemonState(daemonPaths(configPath).state);
  return state && isProcessAlive(state.pid) ? state : null;
}

export async function runningDaemonPid(configPath: string): Promise<number | null> {
  return (await runningDaemonState(configPath))?.pid ?? null;
}
