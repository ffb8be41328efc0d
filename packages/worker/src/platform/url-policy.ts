import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { Readable } from 'node:stream';
import { isLoopbackHost } from '@studio-worker/protocol';
import { http } from './node-http.ts';

/**
 * The worker's one URL policy: which URLs it fetches for a studio, and from which addresses. A
 * studio is not trusted blindly (issue 9): it names model file URLs and input image URLs, and the
 * worker runs on somebody's PC, inside their network.
 *
 * - Model files (`checkDownloadUrl`): https only; plain http to a loopback host only when the
 *   operator allows it (`allow_loopback_http`, for tests and local mirrors). A model file never
 *   goes back to the studio (only its sha256 is compared), so the address is not restricted.
 * - Input images (`checkInputUrl`, `fetchPublic`): their bytes do go back to the studio in the
 *   result, so they are refused from loopback, private, link-local, unspecified, shared (CGNAT)
 *   and other non-public addresses — judged on the address the host name resolves to, and the
 *   connection is made to exactly that checked address (no second DNS answer can swap it). An
 *   origin the operator trusts (the studio's own, an engine server's, `allowed_input_origins`)
 *   is exempt and may also use plain http.
 */

/** True for an absolute http or https URL with a host (config values such as engine server URLs). */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/**
 * Checks a model download URL before any request is made (original-spec §3.4, lesson §10.11:
 * plain-http model URLs were a MITM hole). https always; http only to a loopback host and only when
 * `allowLoopbackHttp`. Every redirect target goes through the same check before it is requested.
 */
export function checkDownloadUrl(url: string, allowLoopbackHttp: boolean): { ok: true; url: URL } | { ok: false; problem: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, problem: `"${url}" is not a URL` };
  }
  if (parsed.protocol === 'https:') return { ok: true, url: parsed };
  if (parsed.protocol === 'http:') {
    if (!isLoopbackHost(parsed.hostname)) {
      return { ok: false, problem: `${displayUrl(parsed)} uses plain http to a remote host; model files are only fetched over https (http is allowed for loopback mirrors only)` };
    }
    if (!allowLoopbackHttp) {
      return { ok: false, problem: `${displayUrl(parsed)} uses plain http; this worker only fetches model files over https (allow_loopback_http = true allows loopback mirrors)` };
    }
    return { ok: true, url: parsed };
  }
  return { ok: false, problem: `${displayUrl(parsed)} uses ${parsed.protocol.replace(/:$/, '')}; model files are only fetched over https` };
}

/**
 * A URL as it may appear in logs and messages: no query, no fragment, no credentials. CDN redirect
 * targets carry signed query strings that are as good as a token for a while.
 */
export function displayUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : new URL(url.href);
  } catch {
    return String(url).replace(/[?#].*$/, '');
  }
  if (parsed.protocol === 'file:') return `file://${parsed.pathname}`;
  parsed.username = '';
  parsed.password = '';
  const hadQuery = parsed.search !== '';
  parsed.search = '';
  parsed.hash = '';
  return hadQuery ? `${parsed.href}?…` : parsed.href;
}

// ---- addresses --------------------------------------------------------------------------------

/** Why an address is not a public one, in words for messages. */
export type AddressClass = 'loopback' | 'private' | 'link-local' | 'unspecified' | 'shared (CGNAT)' | 'multicast' | 'reserved';

const RANGES: ReadonlyArray<[AddressClass, string, number, 'ipv4' | 'ipv6']> = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'],
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['shared (CGNAT)', '100.64.0.0', 10, 'ipv4'],
  // IETF protocol assignments (192.0.0.0/24) and benchmarking (198.18.0.0/15) are no public hosts.
  ['reserved', '192.0.0.0', 24, 'ipv4'],
  ['reserved', '198.18.0.0', 15, 'ipv4'],
  ['multicast', '224.0.0.0', 4, 'ipv4'],
  ['reserved', '240.0.0.0', 4, 'ipv4'],
  ['unspecified', '::', 128, 'ipv6'],
  ['loopback', '::1', 128, 'ipv6'],
  ['private', 'fc00::', 7, 'ipv6'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  // Deprecated site-local addresses still route inside some networks.
  ['private', 'fec0::', 10, 'ipv6'],
  ['multicast', 'ff00::', 8, 'ipv6'],
];

/** One BlockList per class (node's BlockList also matches IPv4-mapped IPv6 against IPv4 rules). */
const BLOCKS: ReadonlyArray<[AddressClass, BlockList]> = (() => {
  const byClass = new Map<AddressClass, BlockList>();
  for (const [cls, network, prefix, type] of RANGES) {
    const list = byClass.get(cls) ?? new BlockList();
    list.addSubnet(network, prefix, type);
    byClass.set(cls, list);
  }
  return [...byClass];
})();

/** NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits; that address is what gets reached. */
const NAT64 = new BlockList();
NAT64.addSubnet('64:ff9b::', 96, 'ipv6');

/**
 * The class of a non-public IP address, or undefined for a public one. IPv4-mapped (`::ffff:a.b.c.d`)
 * and NAT64 (`64:ff9b::a.b.c.d`) IPv6 addresses are judged by the IPv4 address they carry.
 */
export function forbiddenAddressClass(address: string): AddressClass | undefined {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return 'reserved';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (type === 'ipv6' && NAT64.check(bare, 'ipv6')) {
    const embedded = embeddedIpv4(bare);
    if (embedded !== undefined) return forbiddenAddressClass(embedded);
  }
  for (const [cls, list] of BLOCKS) if (list.check(bare, type)) return cls;
  return undefined;
}

/** The IPv4 address in the last 32 bits of an IPv6 address. */
function embeddedIpv4(ipv6: string): string | undefined {
  const dotted = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ipv6);
  if (dotted) return dotted[1];
  const groups = /([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ipv6);
  if (!groups) return undefined;
  const high = Number.parseInt(groups[1] as string, 16);
  const low = Number.parseInt(groups[2] as string, 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/** A host whose address is not a public one: refused before a connection is made. */
export class AddressRefused extends Error {
  readonly host: string;
  readonly address: string;
  readonly addressClass: AddressClass;
  constructor(host: string, address: string, addressClass: AddressClass) {
    const resolved = host.replace(/^\[|\]$/g, '') === address ? `${address} is` : `${host} resolves to ${address},`;
    super(`${resolved} a ${addressClass} address`);
    this.name = 'AddressRefused';
    this.host = host;
    this.address = address;
    this.addressClass = addressClass;
  }
}

/** For a URL whose host is an IP literal (no DNS involved): the refusal when it is not public. */
export function literalAddressRefusal(url: URL): AddressRefused | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0) return undefined;
  const cls = forbiddenAddressClass(host);
  return cls === undefined ? undefined : new AddressRefused(url.hostname, host, cls);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type Resolver = (hostname: string, options: LookupOptions & { all: true }, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * A `lookup` for sockets that resolves once, refuses the host when any of its addresses is not
 * public, and hands the socket exactly the addresses it checked. Because the socket connects to
 * what this function answered, a DNS server cannot answer "public" to a check and "loopback" to
 * the connection (DNS rebinding).
 */
export function checkedLookup(resolve: Resolver = dnsLookup as unknown as Resolver) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      for (const { address } of addresses) {
        const cls = forbiddenAddressClass(address);
        if (cls !== undefined) return callback(new AddressRefused(hostname, address, cls) as NodeJS.ErrnoException, []);
      }
      const first = addresses[0];
      if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}

// ---- input image URLs -------------------------------------------------------------------------

/** Origins the operator trusts for input images: exempt from the address rule, plain http allowed. */
export interface InputUrlPolicy {
  readonly trustedOrigins: ReadonlySet<string>;
}

/** A policy trusting these origins (any URL form; only its origin counts). Unparseable entries are skipped. */
export function inputUrlPolicy(origins: Iterable<string>): InputUrlPolicy {
  const trusted = new Set<string>();
  for (const value of origins) {
    const origin = originOf(value);
    if (origin !== undefined) trusted.add(origin);
  }
  return { trustedOrigins: trusted };
}

/** The http(s) origin of a URL (ws → http, wss → https), or undefined. */
export function originOf(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol === 'ws:') url.protocol = 'http:';
  else if (url.protocol === 'wss:') url.protocol = 'https:';
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return undefined;
  return url.origin;
}

/** Engine table keys that name the engine's own server (comfyui/a1111 `url`, openai `base_url`, llama-cpp `server_url`). */
const ENGINE_SERVER_KEYS = ['url', 'baseUrl', 'serverUrl'] as const;

/**
 * The policy for a worker's config: `allowed_input_origins`, the studio's own origin (it serves
 * earlier results as init images), and the servers of the engines switched on in `[engines.*]`.
 */
export function inputUrlPolicyFor(config: { apiBaseUrl: string; allowedInputOrigins: readonly string[]; engines: Record<string, unknown> }): InputUrlPolicy {
  const origins = [config.apiBaseUrl, ...config.allowedInputOrigins];
  for (const table of Object.values(config.engines)) {
    if (typeof table !== 'object' || table === null || (table as { enabled?: unknown }).enabled === false) continue;
    for (const key of ENGINE_SERVER_KEYS) {
      const value = (table as Record<string, unknown>)[key];
      if (typeof value === 'string') origins.push(value);
    }
  }
  return inputUrlPolicy(origins);
}

export const STRICT_INPUT_POLICY: InputUrlPolicy = { trustedOrigins: new Set() };

export function isTrustedOrigin(policy: InputUrlPolicy, url: URL): boolean {
  return policy.trustedOrigins.has(url.origin);
}

/** Whether an input image URL's scheme may be requested: https anywhere (its address is checked when connecting), plain http only from a trusted origin. */
export function inputSchemeAllowed(url: URL, trusted: boolean): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && trusted);
}

/**
 * GET a URL whose host must be public: an IP literal is judged as it is, a name by every address
 * it resolves to, and the socket connects only to an address that passed (see `checkedLookup`).
 * Rejects with `AddressRefused` before any connection to a non-public address. Answers a Web
 * `Response` so callers treat it like `fetch` (redirects are not followed).
 */
export function fetchPublic(url: URL, init: { headers?: Record<string, string>; signal?: AbortSignal; resolve?: Resolver } = {}): Promise<Response> {
  const refused = literalAddressRefusal(url);
  if (refused !== undefined) return Promise.reject(refused);
  return getWithLookup(url, { headers: init.headers, signal: init.signal }, checkedLookup(init.resolve));
}

/**
 * A GET over node:http(s) whose socket resolves its host with `lookup`, answered as a Web
 * `Response` (redirects are not followed). Exported for tests of this plumbing; use `fetchPublic`.
 */
export function getWithLookup(url: URL, init: { headers?: Record<string, string>; signal?: AbortSignal }, lookup: ReturnType<typeof checkedLookup>): Promise<Response> {
  const request = url.protocol === 'https:' ? httpsRequest : http.request;
  return new Promise<Response>((resolvePromise, reject) => {
    const req = request(url, {
      method: 'GET',
      headers: init.headers,
      signal: init.signal,
      // A fresh socket per request: a pooled one may have been opened without this lookup.
      agent: false,
      lookup,
    });
    // `on`, not `once`: a socket may fail again after the first error, and an unheard one would crash the worker.
    req.on('error', reject);
    req.once('response', (res: IncomingMessage) => {
      try {
        const headers = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string);
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 599) throw new Error(`the server answered with HTTP status ${status}`);
        const nullBody = status === 204 || status === 205 || status === 304;
        if (nullBody) res.resume();
        const body = nullBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolvePromise(new Response(body, { status, statusText: res.statusMessage, headers }));
      } catch (error) {
        res.destroy();
        reject(error);
      }
    });
    req.end();
  });
}
