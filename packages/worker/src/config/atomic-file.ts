import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Replace a file so that a crash leaves either the old or the new content, never half of each:
 * write a temp file in the same directory, fsync it, rename it over the target, fsync the directory.
 * The file gets `mode` (0600 by default: these files may hold secrets or job results).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temp, 'wx', mode);
  try {
    // open() honours the umask; chmod makes the mode exact.
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDir(dirname(path));
}

/**
 * Makes a rename in `dir` durable. Not every platform lets a directory be opened for fsync; that is
 * fine: the file itself was synced before it was renamed.
 */
export async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort only.
  }
}

/** True for temp files left behind by a crash in the middle of writeFileAtomic. */
export function isAtomicTempName(name: string): boolean {
  return /\.tmp-\d+-[0-9a-f]{8}$/.test(name);
}
