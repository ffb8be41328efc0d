import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { LoopbackHttp } from '../../helpers/loopback-http.ts';
import { sha512Integrity } from './tarball.ts';

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

type Route = (res: ServerResponse) => void;

export interface FakeRelease {
  version: string;
  tarball: Buffer;
  deprecated?: string;
  /** Override the integrity the metadata promises (default: the tarball's sha512). */
  integrity?: string | null;
}

/**
 * The release feed of the tests: a real HTTP server on 127.0.0.1:0 serving npm registry metadata,
 * static feeds and tarballs the test built, recording every request it gets.
 */
export class FakeFeed {
  readonly requests: SeenRequest[] = [];
  readonly #routes = new Map<string, Route>();
  readonly #http: LoopbackHttp;

  private constructor() {
    this.#http = new LoopbackHttp((req, res) => {
      const path = req.url ?? '/';
      this.requests.push({ method: req.method ?? 'GET', path, headers: req.headers });
      const route = this.#routes.get(path);
      if (route) route(res);
      else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
    });
  }

  static async start(): Promise<FakeFeed> {
    const feed = new FakeFeed();
    await feed.#http.listen();
    return feed;
  }

  get origin(): string {
    return this.#http.url;
  }

  url(path: string): string {
    return `${this.origin}${path}`;
  }

  route(path: string, route: Route): void {
    this.#routes.set(path, route);
  }

  json(path: string, body: unknown): void {
    const text = JSON.stringify(body);
    this.route(path, (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(text));
  }

  file(path: string, body: Buffer | string): void {
    this.route(path, (res) => res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(body) }).end(body));
  }

  status(path: string, status: number): void {
    this.route(path, (res) => res.writeHead(status).end());
  }

  /** npm registry metadata at /studio-worker, each tarball at /tarballs/studio-worker-<version>.tgz. */
  npm(releases: readonly FakeRelease[], distTags: Record<string, string> = {}): void {
    const versions: Record<string, unknown> = {};
    for (const release of releases) {
      const path = `/tarballs/studio-worker-${release.version}.tgz`;
      this.file(path, release.tarball);
      const integrity = release.integrity === undefined ? sha512Integrity(release.tarball) : release.integrity;
      versions[release.version] = {
        name: 'studio-worker',
        version: release.version,
        dist: { tarball: this.url(path), shasum: '0'.repeat(40), ...(integrity === null ? {} : { integrity }) },
        ...(release.deprecated ? { deprecated: release.deprecated } : {}),
      };
    }
    this.json('/studio-worker', { name: 'studio-worker', 'dist-tags': distTags, versions, modified: new Date().toISOString() });
  }

  /** Requests that fetched a tarball. */
  tarballRequests(): SeenRequest[] {
    return this.requests.filter((request) => request.path.endsWith('.tgz'));
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}

/** A fetch that records every URL it is asked for, so a test can prove nothing else was contacted. */
export function recordingFetch(): { fetch: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  const recording: typeof fetch = (input, init) => {
    urls.push(input instanceof Request ? input.url : String(input));
    return fetch(input, init);
  };
  return { fetch: recording, urls };
}
