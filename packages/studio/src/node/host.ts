import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, sep } from 'node:path';
import { KIT_DIR } from '@studio-worker/web-kit';
import type { AppContext, StaticFiles, StudioHost } from '../app/host.ts';
import { handedOverBodies } from './create-job-fast.ts';
import type { DiskResultStore } from './results.ts';
import type { RealtimeFeed } from './realtime.ts';
import type { PendingUpgrade } from './upgrade.ts';
import type { WorkerSockets } from './worker-sockets.ts';

const WEB_DIR = join(import.meta.dirname, '..', 'web');

/**
 * What the embedded host passes to `app.fetch`: @hono/node-server's `{ incoming, outgoing }` for a
 * request, `{ incoming, upgrade }` for an upgrade (upgrade.ts). Only this host's ports read it.
 */
export interface NodeBindings {
  incoming: IncomingMessage;
  outgoing?: ServerResponse;
  upgrade?: PendingUpgrade;
}

/** The embedded host's ports (app/host.ts) over what server.ts built. */
export function nodeHost(parts: { results: DiskResultStore; workers: WorkerSockets; feed: RealtimeFeed; commit(): void }): StudioHost {
  return {
    clientAddress: (c) => (c.env as Partial<NodeBindings> | undefined)?.incoming?.socket?.remoteAddress ?? 'unknown',
    results: parts.results,
    sockets: {
      acceptWorker: (c, { workerId }) => parts.workers.acceptWorker(c, workerId),
      acceptFeed: (c, { token }) => parts.feed.acceptFeed(c, token),
    },
    files: diskFiles,
    commit: parts.commit,
    bufferedBody,
    requestBody,
  };
}

/** The dashboard (src/web) and the web kit's browser files, read from disk on each request. */
export const diskFiles: StaticFiles = {
  async read(area, path) {
    const dir = area === 'kit' ? KIT_DIR : WEB_DIR;
    const file = join(dir, ...path.split('/'));
    if (!file.startsWith(dir + sep)) return undefined;
    try {
      return await readFile(file);
    } catch {
      return undefined;
    }
  },
};

/**
 * The body, when it is all in the request stream's buffer (a small body arrives in the same packet
 * as the headers): read at once instead of through stream events, which cost about 50 µs per
 * request. Undefined when it is not all there (then the app reads it the usual way).
 */
async function bufferedBody(c: AppContext): Promise<string | undefined> {
  const incoming = (c.env as Partial<NodeBindings> | undefined)?.incoming;
  if (!incoming) return undefined;
  // Read already by the create fast path, which handed the request over (create-job-fast.ts).
  const handedOver = handedOverBodies.get(incoming);
  if (handedOver !== undefined) return handedOver;
  if (incoming.readableDidRead || incoming.headers['transfer-encoding'] !== undefined) return undefined;
  const declared = Number(incoming.headers['content-length']);
  if (!(declared > 0)) return undefined;
  // Routes run inside the 'request' event, before the parser pushed the rest of that packet: one
  // microtask later the body is there.
  if (incoming.readableLength < declared) await undefined;
  if (incoming.readableLength !== declared) return undefined;
  const body = incoming.read() as Buffer | null;
  return body === null ? undefined : body.toString('utf8');
}

/**
 * The request body as a Web stream of the IncomingMessage's own Buffers: no copy per chunk (the
 * adapter's `Readable.toWeb` clones each one), the message paused while the reader is behind. Every
 * listener is removed once the stream is done, errored or cancelled, so what is left of the body
 * is the adapter's to drain after the answer. A client gone mid-body errors the stream.
 */
function requestBody(c: AppContext): ReadableStream<Uint8Array> | undefined {
  const incoming = (c.env as Partial<NodeBindings> | undefined)?.incoming;
  if (!incoming || incoming.readableDidRead || incoming.readableEnded) return undefined;
  let settled = false;
  const detach = () => {
    settled = true;
    incoming.off('data', onData);
    incoming.off('end', onEnd);
    incoming.off('error', onError);
    incoming.off('close', onClose);
    incoming.pause();
  };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const onData = (chunk: Buffer) => {
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) incoming.pause();
  };
  const onEnd = () => {
    detach();
    controller.close();
  };
  const onError = (error: Error) => {
    if (settled) return;
    detach();
    controller.error(error);
  };
  const onClose = () => {
    if (!settled) onError(new Error('the client closed the connection before the end of the body'));
  };
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        incoming.pause();
        incoming.on('data', onData);
        incoming.on('end', onEnd);
        incoming.on('error', onError);
        incoming.on('close', onClose);
      },
      pull() {
        if (!settled) incoming.resume();
      },
      cancel() {
        detach();
      },
    },
    // Two chunks in hand at most: the reader's backpressure reaches the socket.
    { highWaterMark: 2 },
  );
}
