/**
 * The slice of the Workers runtime API the Cloudflare host uses, typed here instead of pulling in
 * `@cloudflare/workers-types` (whose global declarations clash with @types/node's Request, WebSocket
 * and Response in this one-tsconfig monorepo). Shapes follow workerd's own declarations in
 * @cloudflare/workers-types 4.20260730 (`DurableObjectState`, `SqlStorage`, `R2Bucket`,
 * `WebSocket` with hibernation); only the members used here are listed.
 */

export interface SqlCursor<T> extends Iterable<T> {
  toArray(): T[];
  one(): T;
  readonly rowsRead: number;
  readonly rowsWritten: number;
}

export interface SqlStorage {
  exec<T = Record<string, unknown>>(query: string, ...bindings: unknown[]): SqlCursor<T>;
  readonly databaseSize: number;
}

export interface SyncKvStorage {
  get<T = unknown>(key: string): T | undefined;
  put<T>(key: string, value: T): void;
}

export interface DurableObjectStorage {
  readonly sql: SqlStorage;
  readonly kv: SyncKvStorage;
  transactionSync<T>(fn: () => T): T;
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number | Date): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** A server-side socket: the standard WebSocket plus the hibernation attachment. */
export interface CfWebSocket {
  send(message: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
  accept(): void;
  serializeAttachment(value: unknown): void;
  deserializeAttachment(): unknown;
  readonly readyState: number;
}

export interface DurableObjectId {
  toString(): string;
  readonly name?: string;
}

export interface DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;
  acceptWebSocket(ws: CfWebSocket, tags?: string[]): void;
  getWebSockets(tag?: string): CfWebSocket[];
  getTags(ws: CfWebSocket): string[];
  waitUntil(promise: Promise<unknown>): void;
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
}

export interface DurableObjectStub {
  fetch(request: Request): Promise<Response>;
}

export interface DurableObjectNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): DurableObjectStub;
}

export interface R2Range {
  offset?: number;
  length?: number;
  suffix?: number;
}

export interface R2Object {
  readonly key: string;
  readonly size: number;
  readonly httpEtag: string;
  readonly range?: R2Range;
  readonly httpMetadata?: { contentType?: string };
  readonly customMetadata?: Record<string, string>;
}

export interface R2ObjectBody extends R2Object {
  readonly body: ReadableStream<Uint8Array>;
}

export interface R2PutOptions {
  httpMetadata?: { contentType?: string };
  customMetadata?: Record<string, string>;
}

export interface R2UploadedPart {
  partNumber: number;
  etag: string;
}

export interface R2MultipartUpload {
  readonly key: string;
  readonly uploadId: string;
  uploadPart(partNumber: number, value: ArrayBuffer | Uint8Array | string): Promise<R2UploadedPart>;
  abort(): Promise<void>;
  complete(parts: R2UploadedPart[]): Promise<R2Object>;
}

export interface R2Bucket {
  head(key: string): Promise<R2Object | null>;
  get(key: string, options?: { range?: R2Range }): Promise<R2ObjectBody | null>;
  put(key: string, value: ArrayBuffer | Uint8Array | string | null, options?: R2PutOptions): Promise<R2Object>;
  delete(keys: string | string[]): Promise<void>;
  createMultipartUpload(key: string, options?: R2PutOptions): Promise<R2MultipartUpload>;
}

/** The Worker's and the object's bindings (wrangler.jsonc). */
export interface StudioEnv {
  STUDIO: DurableObjectNamespace;
  RESULTS: R2Bucket;
  /** A Worker secret (`wrangler secret put STUDIO_ADMIN_TOKEN`); a var under Miniflare. */
  STUDIO_ADMIN_TOKEN?: string;
  /** Comma-separated pool names lists fan out over; default `default`. */
  STUDIO_POOLS?: string;
  /** `1` lets models name loopback http URLs (local tests only). */
  STUDIO_ALLOW_LOOPBACK_MODELS?: string;
  /** A claim's lease in seconds (default 30), as `studio serve --lease-seconds`. */
  STUDIO_LEASE_SECONDS?: string;
  /** `studio serve --hello-timeout-seconds`: a worker socket must say hello within this (default 10). */
  STUDIO_HELLO_TIMEOUT_SECONDS?: string;
  /** `studio serve --max-attempts`: a job's retryable failures before it fails (default 3). */
  STUDIO_MAX_ATTEMPTS?: string;
  /** The first webhook retry's delay in ms (default 10 s), as the Node host's STUDIO_WEBHOOK_RETRY_MS. */
  STUDIO_WEBHOOK_RETRY_MS?: string;
  /** Results older than this many days are deleted (hourly, from the alarm); unset: kept. */
  STUDIO_RETENTION_DAYS?: string;
  /** Log filter (STUDIO_WORKER_LOG syntax, the root level only here): default `info`. */
  STUDIO_LOG_LEVEL?: string;
  /** The `version` the health check reports. */
  STUDIO_VERSION?: string;
}

/** workerd's `new WebSocketPair()` (a global there, declared where it is used). */
export type WebSocketPairConstructor = new () => { 0: CfWebSocket; 1: CfWebSocket };
