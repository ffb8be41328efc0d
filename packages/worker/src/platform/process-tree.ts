import { spawnSync } from 'node:child_process';

/**
 * The worker's one process-tree killer: signals a child and everything it spawned. Never throws;
 * returns false when nothing could be signalled (already gone, or not a group leader).
 *
 * POSIX: the child was spawned `detached`, so it leads its own process group and `-pid` reaches
 * the group (a grandchild such as a CUDA helper included).
 * Windows has neither groups nor signals: any terminating signal becomes `taskkill /T /F`, which
 * ends the whole tree at once (a console program has no graceful stop to offer anyway); SIGSTOP and
 * SIGCONT have no counterpart and do nothing.
 */
export function signalTree(pid: number, signal: NodeJS.Signals, platform: NodeJS.Platform = process.platform): boolean {
  if (platform === 'win32') {
    if (signal === 'SIGCONT' || signal === 'SIGSTOP') return false;
    const result = spawnSync('taskkill', ['/pid', String(pid), '/T', '/F'], { stdio: 'ignore', windowsHide: true });
    return result.status === 0;
  }
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    // ESRCH: the group is gone already; EPERM: not ours to signal.
    return false;
  }
}
