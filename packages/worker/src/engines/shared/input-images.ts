import { AddressRefused, fetchPublic, inputSchemeAllowed, isTrustedOrigin, literalAddressRefusal, STRICT_INPUT_POLICY, type InputUrlPolicy } from '../../platform/url-policy.ts';
import { EngineFailure, toEngineFailure } from '../engine.ts';
import { networkErrorMessage } from './http-json.ts';

/**
 * Images an engine fetches by URL (a task's init image, mask or reference image, or a server's
 * result URL) under the worker's one URL policy (../../platform/url-policy.ts, DESIGN.md worker rule 5,
 * issue 9): https to public addresses only — judged on the resolved address, which the connection
 * is then pinned to — unless the origin is trusted (the studio's, an engine server's, or one in
 * `allowed_input_origins`; plain http is allowed there too), inline `data:` URLs where the caller
 * allows them, and every redirect hop held to the same policy. The bytes go back to the studio in
 * the result, so a studio must not be able to read the worker's own network through them. What
 * the bytes really are is read from their magic bytes, because file names and Content-Types lie
 * (§3.4).
 */

/** Image formats told apart by their first bytes. */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'bmp' | 'tiff';

export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  const at = (offset: number, ...values: number[]) => values.every((value, i) => bytes[offset + i] === value);
  if (bytes.length >= 8 && at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (bytes.length >= 3 && at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  // RIFF <size> WEBP
  if (bytes.length >= 12 && at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  // GIF87a / GIF89a
  if (bytes.length >= 6 && at(0, 0x47, 0x49, 0x46, 0x38) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61) return 'gif';
  if (bytes.length >= 2 && at(0, 0x42, 0x4d)) return 'bmp';
  if (bytes.length >= 4 && (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a))) return 'tiff';
  return undefined;
}

/** The file extension a format is saved under. */
export function extensionFor(format: ImageFormat): string {
  return format === 'jpeg' ? 'jpg' : format;
}

/** The format of fetched bytes, or a `bad_input` naming `what` when they are no image we know. */
export function requireImageFormat(bytes: Uint8Array, what: string): ImageFormat {
  const format = sniffImageFormat(bytes);
  if (format !== undefined) return format;
  throw badInput(`${what} is not an image: not a PNG, JPEG, WebP, GIF, BMP or TIFF (got ${describeStart(bytes)})`);
}

export interface FetchImageOptions {
  /** Names the image in messages: a task field ("initImageUrl") or what it is ("generated image"). */
  what: string;
  signal: AbortSignal;
  /** Accept inline `data:` URLs (default true). */
  allowDataUrl?: boolean;
  /** Refuse `data:` URLs that are not base64 (percent-encoded ones are otherwise decoded). */
  base64DataOnly?: boolean;
  /** Origins trusted for input images (`EngineContext.inputUrls`); default none. */
  policy?: InputUrlPolicy;
  /** Also trusted, like the policy's origins (e.g. the engine's own LAN server for its result URLs). */
  trustedOrigin?: string;
  /** Sent only to `trustedOrigin`, never to a third-party URL. */
  trustedHeaders?: Record<string, string>;
  /** Refuse bigger images (default 64 MiB). */
  maxBytes?: number;
  /** Said after the size refusal: how to raise the limit, if the user can. */
  maxBytesHint?: string;
  /** Give up on a slow server after this long (default 60 s). */
  timeoutMs?: number;
  /** Tests only: replaces the network for every origin, so no address check is made. */
  fetch?: typeof fetch;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;

/** Fetch an image's bytes and check by their magic bytes that they are one. */
export async function fetchImage(url: string, options: FetchImageOptions): Promise<{ bytes: Uint8Array; format: ImageFormat }> {
  const bytes = await fetchImageBytes(url, options);
  return { bytes, format: requireImageFormat(bytes, options.what) };
}

/**
 * Download bytes under the URL policy. A URL the policy refuses, a 4xx answer (but 408 and 429),
 * too many bytes or a broken data: URL are `bad_input`; a 5xx, a network failure or a timeout is a
 * retryable `engine_error`; an abort is `cancelled`.
 */
export async function fetchImageBytes(url: string, options: FetchImageOptions): Promise<Uint8Array> {
  const { what, signal } = options;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (url.startsWith('data:')) return decodeDataUrl(url, options, maxBytes);
  if (signal.aborted) throw toEngineFailure(signal.reason, signal);
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = AbortSignal.any([signal, timeout]);
  let current = allowedUrl(url, options);
  try {
    // Redirects are followed by hand so that each hop passes the same URL policy.
    for (let hops = 0; ; hops++) {
      const headers = options.trustedOrigin !== undefined && current.origin === options.trustedOrigin ? options.trustedHeaders : undefined;
      const response = options.fetch
        ? await options.fetch(current, { headers, signal: both, redirect: 'manual' })
        : trusted(current, options)
          ? await fetch(current, { headers, signal: both, redirect: 'manual' })
          : await fetchPublic(current, { headers, signal: both });
      if (isRedirect(response.status)) {
        await response.body?.cancel();
        const location = response.headers.get('location');
        if (location === null || hops >= MAX_REDIRECTS) throw badInput(`${what} ${describeUrl(current)} redirects too often or without a Location`);
        current = allowedUrl(new URL(location, current).toString(), options);
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        const message = `${what} could not be fetched from ${describeUrl(current)}: it answered HTTP ${response.status}`;
        // A missing or forbidden image will not appear on the next attempt; a busy or broken server may recover.
        const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
        throw retryable ? new EngineFailure('engine_error', message, { retryable: true }) : badInput(message);
      }
      return await readCapped(response, current, options, maxBytes);
    }
  } catch (error) {
    if (error instanceof EngineFailure) throw error;
    if (error instanceof AddressRefused) throw refusedAddress(what, current, error);
    if (signal.aborted) throw toEngineFailure(signal.reason, signal);
    if (timeout.aborted) {
      throw new EngineFailure('engine_error', `${what} ${describeUrl(current)} did not answer within ${timeoutMs} ms`, { retryable: true, cause: error });
    }
    throw new EngineFailure('engine_error', `${what} could not be fetched from ${describeUrl(current)}: ${networkErrorMessage(error)}`, { retryable: true, cause: error });
  }
}

function allowedUrl(url: string, options: FetchImageOptions): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badInput(`${options.what} "${url.slice(0, 120)}" is not a URL`);
  }
  const isTrusted = trusted(parsed, options);
  // An address written into the URL is judged before its scheme: that is the reason worth telling.
  const refused = isTrusted ? undefined : literalAddressRefusal(parsed);
  if (refused !== undefined) throw refusedAddress(options.what, parsed, refused);
  if (inputSchemeAllowed(parsed, isTrusted)) return parsed;
  const data = options.allowDataUrl === false ? '' : ' or a data: URL';
  throw badInput(
    `${options.what} must be https${data}; plain http only from a trusted origin (the studio, an engine server, allowed_input_origins): ${describeUrl(parsed)} is not allowed`,
  );
}

function refusedAddress(what: string, url: URL, refused: AddressRefused): EngineFailure {
  return badInput(
    `${what} ${describeUrl(url)} is refused: ${refused.message}; this worker fetches input images from public addresses only (its operator can allow the origin ${url.origin} in allowed_input_origins)`,
  );
}

function trusted(url: URL, options: FetchImageOptions): boolean {
  return url.origin === options.trustedOrigin || isTrustedOrigin(options.policy ?? STRICT_INPUT_POLICY, url);
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

async function readCapped(response: Response, url: URL, options: FetchImageOptions, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(options, `is ${declared} bytes`, maxBytes);
  }
  if (response.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge(options, 'is', maxBytes);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof EngineFailure) throw error;
    if (options.signal.aborted) throw toEngineFailure(options.signal.reason, options.signal);
    throw new EngineFailure('engine_error', `${options.what} download from ${describeUrl(url)} broke off: ${networkErrorMessage(error)}`, { retryable: true, cause: error });
  }
  return new Uint8Array(Buffer.concat(chunks, total));
}

/** `data:[<mediatype>][;base64],<data>` (RFC 2397). */
function decodeDataUrl(url: string, options: FetchImageOptions, maxBytes: number): Uint8Array {
  const { what } = options;
  if (options.allowDataUrl === false) throw badInput(`${what} must be an http(s) URL, not a data: URL`);
  const comma = url.indexOf(',');
  const meta = comma < 0 ? '' : url.slice(5, comma);
  const base64 = /;base64$/i.test(meta);
  if (options.base64DataOnly === true && (comma < 0 || !base64)) throw badInput(`${what} data: URL must be base64 (data:image/png;base64,…)`);
  if (comma < 0) throw badInput(`${what} is a data: URL without a comma`);
  const payload = url.slice(comma + 1);
  const bytes = base64 ? Buffer.from(payload, 'base64') : Buffer.from(decodeURIComponent(payload), 'latin1');
  if (bytes.byteLength > maxBytes) throw tooLarge(options, '(a data: URL) is', maxBytes);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function tooLarge(options: FetchImageOptions, is: string, maxBytes: number): EngineFailure {
  const hint = options.maxBytesHint === undefined ? '' : ` (${options.maxBytesHint})`;
  return badInput(`${options.what} ${is} more than the ${maxBytes} bytes an input image may have${hint}`);
}

/** A URL for messages and logs: no query (it may carry a signature), no inline data. */
export function describeUrl(url: URL): string {
  if (url.protocol === 'data:') return '(data: URL)';
  return `${url.origin}${url.pathname}`;
}

function describeStart(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'an empty body';
  const hex = Buffer.from(bytes.subarray(0, 8)).toString('hex').replace(/(..)/g, '$1 ').trim();
  return `${bytes.length} bytes starting ${hex}`;
}

function badInput(message: string): EngineFailure {
  return new EngineFailure('bad_input', message, { retryable: false });
}
