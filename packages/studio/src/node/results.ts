import { chmodSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResultStore, StagedResult, StoredResult } from '../app/host.ts';

/** Bytes read from disk per chunk of a streamed result. */
const CHUNK = 64 * 1024;

/**
 * The embedded host's ResultStore (app/host.ts): result files on disk,
 * `<data>/results/<jobId>-a<attempt>.<ext>`. Uploads stream into `<data>/results/.incoming/` first
 * and are renamed into place only once complete and accepted, so a reader never sees half a file
 * and an aborted upload leaves nothing behind.
 */
export class DiskResultStore implements ResultStore {
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

  async stage(body: ReadableStream<Uint8Array>, _options: { jobId: string; maxBytes: number }): Promise<StagedResult> {
    const incoming = join(this.incomingDir, `${randomBytes(8).toString('hex')}.part`);
    const reader = body.getReader();
    let handle: FileHandle | undefined;
    let bytes = 0;
    try {
      // 'wx': never write through a name that already exists.
      handle = await open(incoming, 'wx', 0o600);
      for (let next = await reader.read(); !next.done; next = await reader.read()) {
        // write(2) may take part of a chunk; the rest goes in the next call.
        for (let at = 0; at < next.value.length; ) at += (await handle.write(next.value, at)).bytesWritten;
        bytes += next.value.length;
      }
      await handle.close();
      handle = undefined;
    } catch (error) {
      // The upload failed (client gone, too large, malformed) or the disk did. The body is
      // cancelled so its writer is not left waiting (a no-op when it errored itself); the handle
      // is closed before the .part is deleted, never after.
      await reader.cancel(error).catch(() => undefined);
      await handle?.close().catch(() => undefined);
      discard(incoming);
      throw error;
    }
    return {
      bytes,
      commit: async ({ jobId, attempt, ext }) => {
        const fileName = `${jobId.replace(/[^A-Za-z0-9._-]/g, '_')}-a${attempt}.${ext}`;
        await rename(incoming, join(this.dir, fileName));
        return fileName;
      },
      discard: async () => discard(incoming),
    };
  }

  async remove(fileName: string): Promise<void> {
    discard(join(this.dir, fileName));
  }

  /** A stored result's size, and a way to stream any byte range of it; undefined when it is gone. */
  async open(fileName: string): Promise<StoredResult | undefined> {
    const path = join(this.dir, fileName);
    try {
      const size = statSync(path).size;
      return { size, stream: async (start, end) => fileStream(path, start, end) };
    } catch {
      return undefined;
    }
  }
}

/** Delete a file. Never throws: when its folder is gone or broken, so is the file. */
function discard(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // ENOTDIR / EACCES: nothing we could delete is there.
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
