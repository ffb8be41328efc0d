import { isLoopbackHost } from '@studio-worker/protocol';
import { displayUrl } from '../platform/url-policy.ts';
import { UpdateError, errorText } from './errors.ts';

export { displayUrl };

/** What every request of the updater needs. */
export interface HttpClient {
  fetch: typeof fetch;
  /** `studio-worker/<version>`. */
  userAgent: string;
}

export interface GetOptions {
  accept: string;
  /** The whole request, body included, must finish within this. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Credentials from the feed URL, sent only to the feed's own origin (also after a redirect back to it). */
  auth?: FeedAuth;
}

/** `user:password@` taken out of the feed URL: fetch() refuses URLs with credentials, and logs must never show them. */
export interface FeedAuth {
  origin: string;
  authorization: string;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * https always; plain http only to a loopback host (tests, a local mirror). The original's updater
 * ran whatever installer the feed named; an http feed on the open network would be remote code
 * execution for anyone on the path (original-spec §10 item 12).
 */
export function checkUpdateUrl(url: string | URL, what: string): URL {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : new URL(url.href);
  } catch {
    throw new UpdateError('insecure_url', `${what} "${displayUrl(String(url))}" is not a URL`);
  }
  if (parsed.protocol === 'https:') return parsed;
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) return parsed;
  const scheme = parsed.protocol.replace(/:$/, '');
  throw new UpdateError('insecure_url', `${what} ${displayUrl(parsed)} uses ${scheme}; updates are only fetched over https (http only from a loopback host)`);
}

/** Split credentials off a URL, as a Basic authorization for its origin. */
export function takeCredentials(url: URL): { url: URL; auth?: FeedAuth } {
  if (url.username === '' && url.password === '') return { url };
  const bare = new URL(url.href);
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  bare.username = '';
  bare.password = '';
  return { url: bare, auth: { origin: bare.origin, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } };
}

/**
 * GET with the updater's rules: every hop (redirects included) must pass `checkUpdateUrl`, the
 * User-Agent names this worker, credentials go only to their own origin, and the timeout covers the
 * body too (the returned response's body stream is tied to the same signal). Non-2xx answers become
 * an `http_status` error naming the status and the URL without credentials.
 */
export async function httpGet(client: HttpClient, url: URL, what: string, options: GetOptions): Promise<Response> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let current = checkUpdateUrl(url, what);
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { accept: options.accept, 'user-agent': client.userAgent };
    if (options.auth && current.origin === options.auth.origin) headers.authorization = options.auth.authorization;
    let response: Response;
    try {
      response = await client.fetch(current, { headers, redirect: 'manual', signal });
    } catch (error) {
      throw requestFailure(error, current, what, options, timeout);
    }
    if (REDIRECT_STATUSES.has(response.status)) {
      const location = response.headers.get('location');
      await response.body?.cancel().catch(() => {});
      if (!location) throw new UpdateError('http_status', `${what} ${displayUrl(current)} answered ${response.status} without a Location`);
      if (hop >= MAX_REDIRECTS) throw new UpdateError('http_status', `${what} ${displayUrl(url)} redirected more than ${MAX_REDIRECTS} times`);
      current = checkUpdateUrl(new URL(location, current), `${what} (redirected)`);
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      throw new UpdateError('http_status', `${what} ${displayUrl(current)} answered ${status}`);
    }
    return response;
  }
}

/** Read a whole (small) body, refusing one above `maxBytes`. */
export async function readBody(response: Response, url: URL, what: string, maxBytes: number, options: Pick<GetOptions, 'timeoutMs' | 'signal'>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        await response.body?.cancel().catch(() => {});
        throw new UpdateError('feed_invalid', `${what} ${displayUrl(url)} is larger than ${maxBytes} bytes; is it really a release feed?`);
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    throw requestFailure(error, url, what, options);
  }
  return Buffer.concat(chunks);
}

/** A network error, a timeout, or our own stop, as an UpdateError that says which. */
export function requestFailure(error: unknown, url: URL, what: string, options: Pick<GetOptions, 'timeoutMs' | 'signal'>, timeout?: AbortSignal): UpdateError {
  if (error instanceof UpdateError) return error;
  if (options.signal?.aborted) return new UpdateError('cancelled', `${what} ${displayUrl(url)}: stopped (the daemon is shutting down)`, { cause: error });
  const timedOut = timeout?.aborted || (error instanceof Error && (error.name === 'TimeoutError' || (error as { cause?: { name?: string } }).cause?.name === 'TimeoutError'));
  if (timedOut) return new UpdateError('unreachable', `${what} ${displayUrl(url)} did not answer within ${Math.round(options.timeoutMs / 1000)} s`, { cause: error });
  return new UpdateError('unreachable', `cannot reach ${what} ${displayUrl(url)}: ${errorText(error)}`, { cause: error });
}
