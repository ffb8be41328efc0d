import type { Context } from 'hono';

/**
 * The ports a host gives the studio app (app/index.ts). The app is one Hono app over Web
 * `Request`/`Response`: every route, the worker and dashboard WebSocket endpoints (their checks),
 * result uploads and the dashboard files. What only a host can do sits behind these ports, next to
 * the core's own (core/ports.ts: SQL, clock, worker channel, event sink, crypto).
 *
 * Two hosts implement them:
 * - node/ (the embedded host): node:sqlite, `ws`, files under the data directory, timers.
 * - cloudflare/ (a Worker + one Durable Object per pool): ctx.storage.sql, hibernatable
 *   WebSockets, R2, alarms.
 *
 * Arrows: node → app → core, cloudflare → app → core. Nothing here or in app/ imports `node:`,
 * Buffer or `@hono/node-server`; test/app/portable.test.ts checks it.
 */
export interface StudioHost {
  /**
   * The caller's network address (registration rate limit, the pending request's record).
   * Node: the socket's remote address. Cloudflare: the `CF-Connecting-IP` header.
   * Answers `'unknown'` when the host cannot tell.
   */
  clientAddress(c: AppContext): string;

  /** Where result files live: files under the data directory (Node), R2 (Cloudflare). */
  results: ResultStore;

  /** Completes the WebSockets the app has authenticated. */
  sockets: SocketAcceptor;

  /** The dashboard's and the web kit's static files. */
  files: StaticFiles;

  /**
   * Make this request's database writes durable before its answer goes out; the app calls it once
   * per request, after the route (the job-creating routes call it earlier, so the offers they made
   * leave before their answer is built; a second call finds nothing to commit). Node: the group commit of node:sqlite (one fsync for every
   * request of the turn). Durable Object: nothing to do (the output gate holds the answer until
   * the storage write is durable).
   */
  commit(): void;

  /**
   * Optional fast path for small JSON bodies: the whole body as text when the host already holds
   * it (Node: the bytes that arrived in the same packet as the headers, read without stream
   * events, ~50 µs a request saved on POST /jobs), else undefined and the app reads
   * `c.req.raw.body`. A host without such a trick leaves it out.
   */
  bufferedBody?(c: AppContext): Promise<string | undefined>;

  /**
   * Optional fast path for large bodies (result uploads): the request body as a Web stream that
   * hands over the host's own chunks. Node: the IncomingMessage's Buffers as they arrive, paused
   * while the reader is behind (the generic `c.req.raw.body` of @hono/node-server copies every
   * chunk). Undefined, or a host without it: the app reads `c.req.raw.body`.
   */
  requestBody?(c: AppContext): ReadableStream<Uint8Array> | undefined;
}

/** What the app keeps on each request's context. Ports may read `c.env` (their host's bindings). */
export interface AppVariables {
  /** HostLimits.maxJsonDepth, for readJson. */
  maxJsonDepth: number;
  /** The host serving this request (readJson's fast body path, ports reached from helpers). */
  host: StudioHost;
}

/**
 * The app's Hono environment. `Bindings` are whatever the host passes as `app.fetch(request, env)`
 * (Node: `{ incoming, outgoing }` of @hono/node-server plus the upgrade's socket; Cloudflare: the
 * Worker's env). The app never reads them; only the host's own ports do.
 */
export type AppEnv = { Bindings: object; Variables: AppVariables };
export type AppContext = Context<AppEnv>;

/**
 * Result files. Keys are chosen by the store and recorded in SQL as the job's `fileName`; the app
 * never builds a path or a key itself.
 */
export interface ResultStore {
  /**
   * Store an uploaded result file while it arrives; it becomes readable only through
   * `StagedResult.commit`. `body` is the multipart file part: the app errors it when the client
   * goes away mid-body, the multipart body turns out malformed, or more than `maxBytes` arrive
   * (the app counts; the store may use `maxBytes` to plan, e.g. single put vs multipart upload).
   *
   * Resolves once every byte is stored. Rejects when `body` errors or the storage refuses (disk
   * full, EACCES, R2 failing) — in every case having removed whatever it wrote (Node: the
   * `.incoming/<random>.part` file; R2: the object, or `abortMultipartUpload`). A rejection that is
   * not `body`'s own error is answered 500 `storage_failed` naming its `code` (else its message).
   *
   * Never holds the whole file in memory: Node streams to disk; R2 may collect a small file and
   * `put` it once, a large one goes through the multipart upload API in parts of at least 5 MiB.
   */
  stage(body: ReadableStream<Uint8Array>, options: { jobId: string; maxBytes: number }): Promise<StagedResult>;

  /** A stored result: its size and a way to stream any byte range of it; undefined when it is gone. */
  open(key: string): Promise<StoredResult | undefined>;

  /** Delete a stored result (retention, a completion the database refused). A missing key is no error; never throws. */
  remove(key: string): Promise<void>;
}

/** An upload stored in full but not yet the result of anything. Exactly one of commit / discard is called. */
export interface StagedResult {
  /** Bytes stored. */
  readonly bytes: number;
  /**
   * Make it the stored result of this job attempt and answer the key to record in SQL. Must not
   * copy bytes. Node: a rename into `results/<jobId>-a<attempt>.<ext>` (unique per attempt, so a
   * stale upload never overwrites). R2: the key it was written under, unchanged.
   */
  commit(name: { jobId: string; attempt: number; ext: string }): Promise<string>;
  /** Delete it (the claim was gone, a field was invalid). Never throws. */
  discard(): Promise<void>;
}

export interface StoredResult {
  size: number;
  /**
   * Bytes `start`..`end` (inclusive) as a Web stream that reads on demand; cancelling it releases
   * what it holds (Node: the file handle; R2: the object body). GET answers 200 or 206 with it;
   * HEAD never calls it.
   */
  stream(start: number, end: number): Promise<ReadableStream<Uint8Array>>;
}

/**
 * WebSocket acceptance. The app runs every check of an upgrade as an ordinary GET route (path,
 * percent-encoding, subprotocol, bearer token against `workers.token_hash`, the dashboard token)
 * and answers refusals as plain HTTP errors; only an upgrade that passed reaches the host here.
 * The answer is returned by the app as is.
 *
 * Node: `server.on('upgrade')` turns the upgrade into a `Request` and runs it through `app.fetch`
 * with the raw socket and head in its bindings; the port completes the handshake with `ws`, and
 * answers a placeholder the upgrade handler drops (any other answer is written to the socket as a
 * plain HTTP refusal). Cloudflare: `ctx.acceptWebSocket(server, tags)` and a `101` with the client end.
 */
export interface SocketAcceptor {
  /**
   * A worker whose token matched: accept with subprotocol `protocol` (studio-worker-v1), choose a
   * connection id, and call `dispatcher.connectionOpened(connId, workerId)`; then each text frame
   * → `handleText`, each binary frame → `handleBinary`, the close → `connectionClosed`. Frames of
   * at most MAX_FRAME_BYTES, no compression.
   */
  acceptWorker(c: AppContext, accept: { workerId: string; protocol: string }): Response | Promise<Response>;
  /**
   * A dashboard feed whose token was admitted: accept with subprotocol `protocol`
   * (studio-dashboard) and hand the socket to the feed, which keeps `token` to re-check before
   * each batch of events (a revoked token's feed is closed with 1008).
   */
  acceptFeed(c: AppContext, accept: { token: string; protocol: string }): Response | Promise<Response>;
}

/**
 * The dashboard's files (packages/studio/src/web, served at `/`) and the web kit's
 * (packages/web-kit/browser, served at `/kit/`). Node reads the disk on each request (served
 * `no-cache`, so an edit shows on reload); Cloudflare serves them from a module generated at build
 * time and bundled into the Worker.
 */
export interface StaticFiles {
  /**
   * The bytes of one file, or undefined when there is none. `path` is relative to the area's
   * folder and already checked by the app: decoded, `/`-separated, no `..`, `.` or empty segment,
   * no backslash or NUL. A host still keeps the read inside its folder.
   */
  read(area: 'web' | 'kit', path: string): Promise<Uint8Array | undefined>;
}
