import { isProcessAlive } from '../platform/lock.ts';
import { discoveryPath, readDiscovery, type LocalApiDiscovery } from './discovery.ts';

/** How long one CLI request may take before the daemon counts as not answering. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
}

/** Why a request to the daemon got no answer at all (an HTTP error status is an answer). */
export class DaemonUnreachableError extends Error {
  readonly code = 'daemon_unreachable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DaemonUnreachableError';
  }
}

/**
 * A client of the running daemon's local API, found through `<config dir>/local-api.json` (for the
 * CLI, and anything else on this machine that has read access to the config dir).
 */
export class LocalApiClient {
  readonly url: string;
  readonly pid: number;
  readonly #token: string;

  constructor(discovery: LocalApiDiscovery) {
    this.url = discovery.url.replace(/\/+$/, '');
    this.pid = discovery.pid;
    this.#token = discovery.token;
  }

  /** The client for the daemon of this config dir, or null when none runs (no file, or its pid is gone). */
  static async discover(configDir: string): Promise<LocalApiClient | null> {
    const discovery = await readDiscovery(configDir);
    if (!discovery || !isProcessAlive(discovery.pid)) return null;
    return new LocalApiClient(discovery);
  }

  static discoveryFile(configDir: string): string {
    return discoveryPath(configDir);
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const why = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new DaemonUnreachableError(`the daemon (pid ${this.pid}) did not answer at ${this.url}: ${why}`, { cause: error });
    }
    const text = await response.text();
    let parsed: unknown = text;
    if ((response.headers.get('content-type') ?? '').includes('application/json')) {
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        // Leave it as text.
      }
    }
    return { status: response.status, body: parsed as T };
  }
}

/** `{error, message}` from an answer body, or a description of the status. */
export function errorMessage(answer: ApiAnswer): string {
  const body = answer.body as { error?: unknown; message?: unknown } | undefined;
  if (body && typeof body.message === 'string') return body.message;
  return `HTTP ${answer.status}`;
}
