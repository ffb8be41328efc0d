import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Free bytes on the filesystem that holds `path`, asking its nearest existing ancestor (models_root
 * may not exist before the first download); null when nothing can be read.
 */
export async function freeBytesAt(path: string): Promise<number | null> {
  for (let current = path; ; current = dirname(current)) {
    try {
      const info = await statfs(current);
      return Number(info.bavail) * Number(info.bsize);
    } catch {
      if (dirname(current) === current) return null;
    }
  }
}
