import { open, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { rmSync, readFileSync } from 'node:fs';
import { sleep } from './sleep.ts';

/** Another live process holds the lock. */
export class LockHeldError extends Error {
  readonly code = 'lock_held';
  readonly pid: number;
  constructor(pid: number, message: string) {
    super(message);
    this.name = 'LockHeldError';
    this.pid = pid;
  }
}

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(path: string): Promise<number | null> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/**
 * One daemon per config dir (DESIGN.md worker rule 1): `daemon.lock` is created exclusively and
 * holds the owner's pid. A lock whose pid is dead (a crash, kill -9) is taken over.
 */
export class DaemonLock {
  readonly path: string;
  #held = false;

  private constructor(path: string) {
    this.path = path;
  }

  static async acquire(path: string, describeOwner: (pid: number) => string): Promise<DaemonLock> {
    const lock = new DaemonLock(path);
    for (let round = 0; round < 5; round++) {
      if (await lock.#tryCreate()) {
        // A racing takeover could have replaced our file in the meantime; make sure it is still ours.
        if ((await readPid(path)) === process.pid) {
          lock.#held = true;
          return lock;
        }
        continue;
      }
      const owner = await readPid(path);
      if (owner === process.pid) {
        lock.#held = true;
        return lock;
      }
      if (owner !== null && isProcessAlive(owner)) throw new LockHeldError(owner, describeOwner(owner));
      if (owner === null && round === 0) {
        // Created but not yet written by a daemon starting right now: give it a moment.
        await sleep(100);
        continue;
      }
      // Stale: move it out of the way atomically, so only one contender takes it over.
      const aside = `${path}.stale-${randomBytes(4).toString('hex')}`;
      await rename(path, aside).catch(() => {});
      await rm(aside, { force: true });
    }
    throw new Error(`could not take ${path}; remove the file if no studio-worker daemon is running`);
  }

  async #tryCreate(): Promise<boolean> {
    try {
      const handle = await open(this.path, 'wx', 0o600);
      try {
        await handle.writeFile(`${process.pid}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }

  /** Remove the lock if it is still ours. Synchronous, so it also works on the way out of exit(). */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      if (readFileSync(this.path, 'utf8').trim() === String(process.pid)) rmSync(this.path, { force: true });
    } catch {
      // Already gone.
    }
  }
}
