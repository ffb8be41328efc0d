// A host for running the studio app with no server at all: `app.fetch(new Request(…))`, results in
// memory. It implements the ports of src/app/host.ts the way the contract says (nothing of a
// failed upload kept, keys chosen by the store, commit without copying), and counts what is
// staged, so tests can assert that every way out of an upload leaves nothing behind.
import { silentLogger } from '@studio-worker/log';
import type { Hono } from 'hono';
import { createApp } from '../../src/app/app.ts';
import type { AppEnv, ResultStore, StagedResult, StoredResult, StudioHost } from '../../src/app/host.ts';
import { DEFAULT_HOST_LIMITS, type HostLimits } from '../../src/app/limits.ts';
import { RateLimiter, type StudioCore } from '../../src/core/index.ts';
import { diskFiles } from '../../src/node/host.ts';

export class MemoryResults implements ResultStore {
  /** Committed results by key. */
  readonly objects = new Map<string, Uint8Array>();
  /** Keys being written or staged and not yet committed or discarded. */
  readonly pending = new Set<string>();
  /** Bytes received so far by the upload being staged (to observe streaming). */
  received = 0;
  /** When set, the store refuses an upload once it has received more than this many bytes. */
  failAfterBytes: number | undefined;
  private next = 0;

  async stage(body: ReadableStream<Uint8Array>, options: { jobId: string; maxBytes: number }): Promise<StagedResult> {
    const key = `results/${options.jobId}/${++this.next}`;
    this.pending.add(key);
    this.received = 0;
    const chunks: Uint8Array[] = [];
    const reader = body.getReader();
    try {
      for (let next = await reader.read(); !next.done; next = await reader.read()) {
        this.received += next.value.length;
        if (this.failAfterBytes !== undefined && this.received > this.failAfterBytes) throw Object.assign(new Error('the bucket refused the write'), { code: 'BUCKET_FULL' });
        chunks.push(next.value.slice());
      }
    } catch (error) {
      await reader.cancel(error).catch(() => undefined);
      this.pending.delete(key);
      throw error;
    }
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    return {
      bytes,
      commit: async () => {
        const all = new Uint8Array(bytes);
        let at = 0;
        for (const c of chunks) {
          all.set(c, at);
          at += c.length;
        }
        this.objects.set(key, all);
        this.pending.delete(key);
        return key;
      },
      discard: async () => {
        this.pending.delete(key);
      },
    };
  }

  async open(key: string): Promise<StoredResult | undefined> {
    const bytes = this.objects.get(key);
    if (!bytes) return undefined;
    return { size: bytes.length, stream: async (start, end) => new Blob([bytes.slice(start, end + 1)]).stream() };
  }

  async remove(key: string): Promise<void> {
    this.objects.delete(key);
  }
}

export interface MemoryApp {
  app: Hono<AppEnv>;
  results: MemoryResults;
  host: StudioHost;
}

/** The studio app over `core`, with results in memory and sockets that are never accepted. */
export function memoryApp(core: StudioCore, limits: Partial<HostLimits> = {}): MemoryApp {
  const results = new MemoryResults();
  const refuse = () => new Response(JSON.stringify({ error: 'bad_upgrade', message: 'this host has no sockets' }), { status: 400 });
  const host: StudioHost = { clientAddress: () => '192.0.2.1', results, files: diskFiles, commit() {}, sockets: { acceptWorker: refuse, acceptFeed: refuse } };
  const app = createApp(
    { core, host, log: silentLogger, registerLimiter: new RateLimiter(100, 60_000), limits: { ...DEFAULT_HOST_LIMITS, ...limits }, now: Date.now },
    { version: 'test' },
  );
  return { app, results, host };
}
