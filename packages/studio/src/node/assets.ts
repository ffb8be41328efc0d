import { chmodSync, createReadStream, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/**
 * Result files on disk: `<data>/results/<jobId>-a<attempt>.<ext>`. Uploads stream into
 * `<data>/results/.incoming/` first and are renamed into place only once complete, so a reader
 * never sees half a file and an aborted upload leaves nothing behind.
 */
export class AssetStore {
  readonly dir: string;
  readonly incomingDir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'results');
    this.incomingDir = join(this.dir, '.incoming');
    // Results are for the studio's user only, also in a results dir an earlier version made 0755.
    mkdirSync(this.incomingDir, { recursive: true, mode: 0o700 });
    for (const dir of [this.dir, this.incomingDir]) chmodSync(dir, 0o700);
    // Uploads interrupted by a crash never finished; nothing refers to them.
    for (const name of readdirSync(this.incomingDir)) rmSync(join(this.incomingDir, name), { force: true });
  }

  incomingPath(id: string): string {
    return join(this.incomingDir, id);
  }

  /** The final name for a job attempt's result; unique per attempt, so a stale upload never overwrites. */
  fileName(jobId: string, attempt: number, ext: string): string {
    return `${jobId.replace(/[^A-Za-z0-9._-]/g, '_')}-a${attempt}.${ext}`;
  }

  commit(incoming: string, fileName: string): void {
    renameSync(incoming, join(this.dir, fileName));
  }

  discard(path: string): void {
    rmSync(path, { force: true });
  }

  remove(fileName: string): void {
    rmSync(join(this.dir, fileName), { force: true });
  }

  open(fileName: string): { stream: Readable; size: number } | undefined {
    const path = join(this.dir, fileName);
    try {
      const size = statSync(path).size;
      return { stream: createReadStream(path), size };
    } catch {
      return undefined;
    }
  }
}
