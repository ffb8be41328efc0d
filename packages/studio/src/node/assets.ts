import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes read from disk per chunk of a streamed result. */
const CHUNK = 64 * 1024;

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

  /** Delete a half-written upload. Never throws: when its folder is gone or broken, so is the file. */
  discard(path: string): void {
    try {
      rmSync(path, { force: true });
    } catch {
      // ENOTDIR / EACCES: nothing we could delete is there.
    }
  }

  remove(fileName: string): void {
    rmSync(join(this.dir, fileName), { force: true });
  }

  /** A stored result's size, and a way to stream any byte range of it; undefined when it is gone. */
  open(fileName: string): { size: number; stream(start: number, end: number): ReadableStream<Uint8Array> } | undefined {
    const path = join(this.dir, fileName);
    try {
      const size = statSync(path).size;
      return { size, stream: (start, end) => fileStream(path, start, end) };
    } catch {
      return undefined;
    }
  }
}

/**
 * The one way a file goes into a response: bytes `start`..`end` (inclusive) as a Web stream that
 * reads on demand and owns its file handle. A client that leaves early cancels it, which closes
 * the handle; a read that returns after the cancel enqueues nothing. (A Node `Readable` handed to
 * `new Response()` raced undici's stream closing and crashed the process: ERR_INVALID_STATE.)
 */
export function fileStream(path: string, start: number, end: number): ReadableStream<Uint8Array> {
  let handle: FileHandle | undefined;
  let position = start;
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    await handle?.close().catch(() => undefined);
  };
  return new ReadableStream<Uint8Array>(
    {
      async start() {
        handle = await open(path, 'r');
        if (released) await handle.close(); // cancelled before the file was open
      },
      async pull(controller) {
        if (released) return;
        const length = Math.min(CHUNK, end + 1 - position);
        if (length <= 0) {
          controller.close();
          return release();
        }
        const buffer = new Uint8Array(length);
        let bytesRead: number;
        try {
          ({ bytesRead } = await (handle as FileHandle).read(buffer, 0, length, position));
        } catch (error) {
          await release();
          throw error;
        }
        if (released) return; // cancelled while reading
        if (bytesRead === 0) {
          controller.close();
          return release();
        }
        position += bytesRead;
        controller.enqueue(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
      },
      cancel: release,
    },
    { highWaterMark: 0 },
  );
}
