// The HTTP fuzzer (issue 9): what a stranger, a broken proxy or a scanner sends to a port —
// malformed request lines, absolute-form targets, bad escapes, hostile and duplicated headers,
// upgrade requests on every route, bodies cut short, connections dropped at every phase — over raw
// `net` sockets at every route of a target. After each round the target must still be itself:
// alive, /health answering, open fds and RSS back at baseline (± a margin), no `.part` files.
// `npm test` runs it small (test/fuzz/http.test.ts); `npm run fuzz -- --seconds N` runs it long.
import { prng } from './frame-fuzzer.ts';
import { openFds, partFiles, rawRequest, rssMiB, settle, type RawOptions } from '../helpers/raw-http.ts';
import { isAlive } from '../../packages/worker/test/helpers/worker-process.ts';

/** One route: method and a path with `:params`; `body` says what a well-formed request carries. */
export interface RouteSpec {
  method: string;
  path: string;
  body?: 'json' | 'multipart';
  /** Never sent with a valid credential (it would delete or stop what the fuzz run stands on). */
  destructive?: boolean;
  /** A WebSocket endpoint (upgrade requests go everywhere; these are where they can succeed). */
  upgrade?: boolean;
}

export interface FuzzTarget {
  name: string;
  port: number;
  pid: number;
  /** `GET` path that answers 200 while the target is well. */
  healthPath: string;
  routes: RouteSpec[];
  /** Values for `:param`s that exist (so requests reach handlers, not only 404s). */
  knownIds: string[];
  /** Authorization header values that work, and the upload route's own (one held claim). */
  credentials: string[];
  upload?: { path: string; authorization: string };
  /** Extra headers every well-formed request needs (the worker's local API checks Host). */
  host: string;
  /** Where half-written uploads would be left (checked for `.part` files). */
  dataDir?: string;
}

export interface FuzzCase {
  category: string;
  bytes: Buffer;
  options: RawOptions;
}

export interface RoundFigures {
  requests: number;
  fds: number;
  rssMiB: number;
  parts: number;
  healthMs: number;
}

export interface FuzzReport {
  target: string;
  seed: number;
  rounds: number;
  requests: number;
  seconds: number;
  baselineFds: number;
  maxFds: number;
  baselineRssMiB: number;
  maxRssMiB: number;
  /** Answers by status (0: the connection ended without one). */
  statuses: Record<string, number>;
  categories: Record<string, number>;
  /** Invariant breaks: a dead process, a silent /health, fds or RSS not back, `.part` files left. */
  failures: string[];
}

const CRLF = '\r\n';

/** Deterministic for a seed, so a failing run can be replayed (`--seed`). */
export class HttpFuzzer {
  private readonly random: () => number;
  private readonly target: FuzzTarget;

  constructor(seed: number, target: FuzzTarget) {
    this.random = prng(seed);
    this.target = target;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }

  private chance(p: number): boolean {
    return this.random() < p;
  }

  private int(max: number): number {
    return Math.floor(this.random() * max);
  }

  /** A route's path with its params filled: known ids mostly, hostile segments sometimes. */
  private path(route: RouteSpec): string {
    return route.path.replace(/:[A-Za-z]+/g, () =>
      this.chance(0.6) && this.target.knownIds.length > 0
        ? this.pick(this.target.knownIds)
        : this.pick(['x', '%ZZ', '%', '%E0%A4%A', '%00', '..%2F..%2Fetc%2Fpasswd', 'a'.repeat(3000), '%F0%9F%92%A5', 'null', '-1', '%2e%2e', '']),
    );
  }

  private query(): string {
    if (!this.chance(0.3)) return '';
    const name = this.pick(['limit', 'after', 'before', 'status', 'x', '']);
    const value = this.pick(['abc', '-1', '1e999', '2.5', '0', '99999999999999999999', '%ZZ', '', '10', 'queued']);
    return `?${name}=${value}${this.chance(0.2) ? `&${name}=${value}` : ''}`;
  }

  private auth(route: RouteSpec): string[] {
    const r = this.random();
    if (r < 0.4 && this.target.credentials.length > 0 && !route.destructive) return [`Authorization: ${this.pick(this.target.credentials)}`];
    if (r < 0.55) return [`Authorization: Bearer ${this.pick(['wrong', '', 'x'.repeat(5000), '\u00ff\u00fe'])}`];
    if (r < 0.6) return ['Authorization: Bearer a', 'Authorization: Bearer b'];
    if (r < 0.65) return ['Authorization: Basic Zm9vOmJhcg=='];
    return [];
  }

  private jsonBody(): Buffer {
    const r = this.random();
    if (r < 0.15) return Buffer.from(`${'['.repeat(2000 + this.int(20_000))}1${']'.repeat(100)}`);
    if (r < 0.25) return Buffer.from(`{"a":${'{"a":'.repeat(5000)}1${'}'.repeat(5001)}`);
    if (r < 0.35) return Buffer.from(this.pick(['', '{', 'null', '[]', '"x"', '{"jobs":[', '\u0000', '{"__proto__":{"x":1}}']));
    // Large and well-formed but for a model that does not exist: it must be refused whole. (Jobs the
    // studio accepts would be data, and data grows the database and its cache: not what we measure.)
    if (r < 0.45) return Buffer.from(JSON.stringify({ jobs: Array.from({ length: this.int(3000) }, () => ({ model: 'fuzz-no-such-model', task: { kind: 'image', prompt: 'x' } })) }));
    return Buffer.from(JSON.stringify(this.junk(0)));
  }

  private junk(depth: number): unknown {
    const r = this.random();
    if (r < 0.15) return null;
    if (r < 0.3) return this.int(2 ** 31) * (this.chance(0.5) ? -1 : 1);
    if (r < 0.4) return this.chance(0.5);
    if (r < 0.55) return 'x'.repeat(this.int(500));
    if (r < 0.8 && depth < 4) return Array.from({ length: this.int(4) }, () => this.junk(depth + 1));
    if (depth < 4) {
      const keys = ['model', 'task', 'kind', 'prompt', 'label', 'installId', 'capabilities', 'jobs', 'reason', 'source', 'id', '__proto__', 'constructor'];
      return Object.fromEntries(Array.from({ length: this.int(5) }, () => [this.pick(keys), this.junk(depth + 1)]));
    }
    return 0;
  }

  /** A multipart body that never completes a result: cut short, malformed, or without its file. */
  private multipart(): { body: Buffer; contentType: string } {
    const boundary = `fz${this.int(1e9)}`;
    const contentType = this.pick([`multipart/form-data; boundary=${boundary}`, 'multipart/form-data', `multipart/form-data; boundary="${boundary}"`, `multipart/form-data; boundary=${'b'.repeat(300)}`]);
    const part = (name: string, value: string, file = false) =>
      `--${boundary}${CRLF}Content-Disposition: form-data; name="${name}"${file ? `; filename="${this.pick(['r.png', '../../x.png', '', 'a'.repeat(2000)])}"` : ''}${CRLF}${CRLF}${value}${CRLF}`;
    const file = 'P'.repeat(this.pick([0, 10, 70_000, 600_000]));
    const pieces = [part('ext', this.pick(['png', 'exe', '', '../x'])), part('attempt', this.pick(['1', '-3', 'x', '1e9'])), part('image', file, true)];
    let body = pieces.join('');
    const r = this.random();
    if (r < 0.5) body = body.slice(0, this.int(body.length)); // cut short (the file never ends)
    else if (r < 0.7) body += `--${boundary}--${CRLF}`.slice(0, 4); // a broken terminator
    else if (r < 0.85) body = `${part('image', 'x', true).replace('Content-Disposition', 'Content-Dispositio')}garbage`;
    else body = body.replaceAll(boundary, `${boundary}x`); // no part the parser recognises, never terminated
    return { body: Buffer.from(body, 'latin1'), contentType };
  }

  /** A well-formed request to a route (the base the mutations start from). */
  private request(route: RouteSpec, extraHeaders: string[] = []): { head: string[]; body: Buffer } {
    const target = `${this.path(route)}${this.query()}`;
    const headers = [`Host: ${this.target.host}`, ...this.auth(route), ...extraHeaders];
    let body: Buffer = Buffer.alloc(0);
    if (route.body === 'json' || (route.method !== 'GET' && this.chance(0.3))) {
      body = this.jsonBody();
      headers.push(`Content-Type: ${this.pick(['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/jsonx'])}`);
    } else if (route.body === 'multipart') {
      const m = this.multipart();
      body = m.body;
      headers.push(`Content-Type: ${m.contentType}`);
    }
    if (body.length > 0) headers.push(`Content-Length: ${body.length}`);
    return { head: [`${route.method} ${target} HTTP/1.1`, ...headers], body };
  }

  next(): FuzzCase {
    const route = this.pick(this.target.routes);
    const r = this.random();
    const quick: RawOptions = { timeoutMs: 800 };
    if (r < 0.1) {
      const line = this.pick([
        'GET',
        'GET /',
        'GET / HTTP/1.1 extra',
        'GET  / HTTP/1.1',
        'get / HTTP/1.1',
        'FROB / HTTP/1.1',
        'GET / HTTP/9.9',
        'GET / HTTP/0.9',
        `GET /${'a'.repeat(70_000)} HTTP/1.1`,
        'GET /\u0000 HTTP/1.1',
        'GET /\u00ff HTTP/1.1',
        '\u0016\u0003\u0001\u0002\u0000\u0001', // a TLS hello on a plain port
        'PRI * HTTP/2.0\r\n\r\nSM',
        '\r\n\r\n\r\n',
        `${route.method} ${route.path}`,
      ]);
      return { category: 'malformed-request-line', bytes: Buffer.from(`${line}${CRLF}Host: ${this.target.host}${CRLF}${CRLF}`, 'latin1'), options: { ...quick, halfClose: this.chance(0.5) } };
    }
    if (r < 0.2) {
      const target = this.pick([`http://[::1${route.path}`, `http://${this.target.host}${route.path}`, `https://evil.example${route.path}`, 'http://%zz/', 'http://a:b@[::1]:99999/', '*', `//${route.path}`, 'http:/x', `HTTP://${this.target.host}${this.path(route)}`]);
      const upgrade = this.chance(0.5) ? ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='] : [];
      return { category: 'absolute-form', bytes: Buffer.from(`${route.method} ${target} HTTP/1.1${CRLF}Host: ${this.target.host}${CRLF}${upgrade.map((h) => `${h}${CRLF}`).join('')}${CRLF}`, 'latin1'), options: quick };
    }
    if (r < 0.32) {
      const upgrade = ['Connection: Upgrade', 'Upgrade: websocket'];
      if (this.chance(0.8)) upgrade.push(`Sec-WebSocket-Version: ${this.pick(['13', '8', 'x'])}`);
      if (this.chance(0.8)) upgrade.push(`Sec-WebSocket-Key: ${this.pick(['dGhlIHNhbXBsZSBub25jZQ==', 'short', ''])}`);
      if (this.chance(0.6)) upgrade.push(`Sec-WebSocket-Protocol: ${this.pick(['studio-worker-v1', 'studio-dashboard', 'studio-dashboard, bearer.wrong', 'x'.repeat(2000)])}`);
      const { head } = this.request({ ...route, method: 'GET', body: undefined }, upgrade);
      // Sometimes junk after the handshake, as if it were frames.
      const after = this.chance(0.4) ? Buffer.from([0x81, 0xfe, 0xff, 0xff, 1, 2, 3, 4, 5]) : Buffer.alloc(0);
      return { category: 'upgrade', bytes: Buffer.concat([Buffer.from(head.join(CRLF) + CRLF + CRLF, 'latin1'), after]), options: { timeoutMs: 200 + this.int(400) } };
    }
    if (r < 0.47) {
      const { head, body } = this.request(route);
      const hostile = this.pick([
        ['Content-Length: 5', 'Content-Length: 7'],
        ['Content-Length: 10', 'Transfer-Encoding: chunked'],
        ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
        ['Transfer-Encoding: gzip, chunked'],
        ['Content-Length: -1'],
        ['Content-Length: 99999999999999999999'],
        ['Content-Length: 1e3'],
        [`X-Big: ${'h'.repeat(70_000)}`],
        Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`),
        ['Host: evil.example', 'Host: other'],
        ['NoColonHere'],
        [' folded: continuation'],
        ['X-Null: a\u0000b'],
        ['Content-Type: multipart/form-data; boundary='],
        ['Expect: 100-continue'],
        ['Connection: keep-alive, Upgrade, close'],
        ['Origin: null'],
        ['Accept-Encoding: gzip;q=1e999'],
        ['Range: bytes=0-0,1-1,2-2,3-3', 'Range: bytes=-0'],
        ['Range: bytes=99999999999999999999-'],
      ]);
      const lines = [...head.filter((h) => !(hostile.some((x) => x.startsWith('Content-Length')) && h.startsWith('Content-Length'))), ...hostile];
      return { category: 'hostile-headers', bytes: Buffer.concat([Buffer.from(lines.join(CRLF) + CRLF + CRLF, 'latin1'), body]), options: { ...quick, halfClose: this.chance(0.3) } };
    }
    if (r < 0.62) {
      // A body cut short: announced, then less, then silence, a half-close or a drop.
      const spec = this.target.upload && this.chance(0.5) ? { ...route, method: 'POST', path: this.target.upload.path, body: 'multipart' as const } : { ...route, method: route.method === 'GET' ? 'POST' : route.method, body: route.body ?? 'json' };
      const { head, body } = this.request(spec, spec.path === this.target.upload?.path ? [`Authorization: ${this.target.upload.authorization}`] : []);
      const headBytes = Buffer.from(head.join(CRLF) + CRLF + CRLF, 'latin1');
      const cut = body.length === 0 ? 0 : this.int(body.length);
      return { category: 'body-cut-short', bytes: Buffer.concat([headBytes, body.subarray(0, cut)]), options: { timeoutMs: this.pick([20, 200, 800]), halfClose: this.chance(0.3), chunks: this.pick([1, 3, 8]) } };
    }
    if (r < 0.77) {
      // The connection dropped at some phase: in the request line, in the headers, in the body, or
      // right after the request before the answer, or after its first bytes.
      const { head, body } = this.request(route);
      const bytes = Buffer.concat([Buffer.from(head.join(CRLF) + CRLF + CRLF, 'latin1'), body]);
      const phase = this.pick(['request-line', 'headers', 'body', 'after-request', 'mid-answer']);
      const lineEnd = bytes.indexOf(CRLF);
      const headEnd = bytes.indexOf(CRLF + CRLF);
      const cutAt = phase === 'request-line' ? this.int(lineEnd) : phase === 'headers' ? lineEnd + this.int(headEnd - lineEnd) : phase === 'body' ? headEnd + 4 + this.int(body.length + 1) : bytes.length;
      const options: RawOptions = phase === 'mid-answer' ? { timeoutMs: 800, dropAfterBytes: 1 + this.int(200) } : { timeoutMs: this.pick([0, 5, 50]) };
      return { category: `dropped-${phase}`, bytes: bytes.subarray(0, cutAt), options };
    }
    if (r < 0.85) {
      // Several requests pipelined on one connection, the last one cut.
      const requests = Array.from({ length: 2 + this.int(4) }, () => {
        const { head, body } = this.request(this.pick(this.target.routes));
        return Buffer.concat([Buffer.from(head.join(CRLF) + CRLF + CRLF, 'latin1'), body]);
      });
      const all = Buffer.concat(requests);
      return { category: 'pipelined', bytes: all.subarray(0, all.length - this.int(Math.min(200, all.length))), options: { timeoutMs: 800, halfClose: this.chance(0.5) } };
    }
    // A well-formed request with junk inside (bodies, ids, queries): it should get a typed answer.
    const { head, body } = this.request(route);
    return { category: 'junk-request', bytes: Buffer.concat([Buffer.from(head.join(CRLF) + CRLF + CRLF, 'latin1'), body]), options: { timeoutMs: 1_500, halfClose: this.chance(0.5) } };
  }
}

/** The target's resources right now. */
function measure(target: FuzzTarget): { fds: number; rss: number } {
  return { fds: openFds(target.pid), rss: rssMiB(target.pid) };
}

async function health(target: FuzzTarget): Promise<number | undefined> {
  const started = Date.now();
  const answer = await rawRequest(target.port, `GET ${target.healthPath} HTTP/1.1${CRLF}Host: ${target.host}${CRLF}Connection: close${CRLF}${CRLF}`, { timeoutMs: 5_000 });
  return answer.status === 200 ? Date.now() - started : undefined;
}

export interface FuzzRunOptions {
  seed: number;
  /** Cases per round; the invariants are checked after each round. */
  perRound: number;
  /** Stop after this many rounds, or when `seconds` ran out (whichever comes first). */
  rounds?: number;
  seconds?: number;
  /** Connections in flight at once. */
  concurrency?: number;
  /** How far fds may stay above the baseline after a round settled. */
  fdMargin?: number;
  /**
   * How far RSS may stay above the baseline (MiB). RSS also holds what the allocator keeps after
   * the garbage is collected, so a long run wants more room; `afterWarmup` and a heap snapshot at
   * the end tell a leak (live objects) from that.
   */
  rssMarginMiB?: number;
  /** Called once the baseline is taken (e.g. a heap snapshot to compare the end with). */
  afterWarmup?: () => Promise<void>;
  log?: (line: string) => void;
}

/**
 * Rounds of fuzz cases against one target, the invariants checked after each. The baseline is taken
 * after a warm-up round (lazy modules, caches and the allocator settle first).
 */
export async function runHttpFuzz(target: FuzzTarget, options: FuzzRunOptions): Promise<FuzzReport> {
  const fuzzer = new HttpFuzzer(options.seed, target);
  const started = Date.now();
  const deadline = options.seconds === undefined ? Infinity : started + options.seconds * 1000;
  const report: FuzzReport = {
    target: target.name,
    seed: options.seed,
    rounds: 0,
    requests: 0,
    seconds: 0,
    baselineFds: 0,
    maxFds: 0,
    baselineRssMiB: 0,
    maxRssMiB: 0,
    statuses: {},
    categories: {},
    failures: [],
  };
  const concurrency = options.concurrency ?? 16;
  const fdMargin = options.fdMargin ?? 6;
  const rssMargin = options.rssMarginMiB ?? 64;

  const round = async (): Promise<void> => {
    let next = 0;
    const workers = Array.from({ length: concurrency }, async () => {
      while (next < options.perRound) {
        next++;
        const c = fuzzer.next();
        report.categories[c.category] = (report.categories[c.category] ?? 0) + 1;
        const answer = await rawRequest(target.port, c.bytes, c.options);
        report.statuses[answer.status] = (report.statuses[answer.status] ?? 0) + 1;
        report.requests++;
      }
    });
    await Promise.all(workers);
  };

  // Warm-up, then the baseline (once the warm-up's connections are closed).
  const before = measure(target);
  await round();
  await settle(() => !isAlive(target.pid) || openFds(target.pid) <= before.fds + fdMargin, 10_000);
  if (!isAlive(target.pid)) {
    report.failures.push(`${target.name} exited during the warm-up round (seed ${options.seed})`);
    return report;
  }
  await options.afterWarmup?.();
  const baseline = measure(target);
  report.baselineFds = baseline.fds;
  report.baselineRssMiB = Math.round(baseline.rss);
  for (;;) {
    if (options.rounds !== undefined && report.rounds >= options.rounds) break;
    if (Date.now() >= deadline) break;
    await round();
    report.rounds++;
    const where = `round ${report.rounds} (seed ${options.seed})`;
    if (!isAlive(target.pid)) {
      report.failures.push(`${target.name} exited during ${where}`);
      break;
    }
    const healthMs = await health(target);
    if (healthMs === undefined) report.failures.push(`${target.name} ${target.healthPath} did not answer 200 after ${where}`);
    // Connections the fuzzer closed take a moment to close on the other side too.
    const fdsBack = await settle(() => isAlive(target.pid) && openFds(target.pid) <= baseline.fds + fdMargin, 10_000);
    const now = measure(target);
    report.maxFds = Math.max(report.maxFds, now.fds);
    report.maxRssMiB = Math.max(report.maxRssMiB, Math.round(now.rss));
    if (!fdsBack) report.failures.push(`${target.name} holds ${now.fds} fds after ${where}; baseline ${baseline.fds} (+${fdMargin} allowed)`);
    if (now.rss > baseline.rss + rssMargin) report.failures.push(`${target.name} RSS ${now.rss.toFixed(0)} MiB after ${where}; baseline ${baseline.rss.toFixed(0)} (+${rssMargin} allowed)`);
    if (target.dataDir) {
      const parts = (await settle(() => partFiles(target.dataDir as string).length === 0, 5_000)) ? [] : partFiles(target.dataDir);
      if (parts.length > 0) report.failures.push(`${target.name} left ${parts.length} .part files after ${where}: ${parts.slice(0, 3).join(', ')}`);
    }
    options.log?.(`${target.name} ${where}: ${report.requests} requests, fds ${now.fds} (baseline ${baseline.fds}), RSS ${now.rss.toFixed(0)} MiB (baseline ${baseline.rss.toFixed(0)}), /health ${healthMs ?? 'FAILED'} ms`);
    if (report.failures.length > 0) break;
  }
  report.seconds = Math.round((Date.now() - started) / 100) / 10;
  return report;
}
