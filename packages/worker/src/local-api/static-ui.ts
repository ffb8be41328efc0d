import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { fileInside, KIT_URL_PREFIX, withMetaTags } from '@studio-worker/web-kit';
import { KIT_DIR, UI_DIR } from '../package-layout.ts';

/** Where the web UI's files live once installed (index.html + assets). */
export const DEFAULT_UI_DIR = UI_DIR;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** What the sign-in page tells a visitor without a token: this daemon's config dir and the command that opens the UI. */
export interface SignInHints {
  configDir: string;
  uiCommand: string;
}

/** index.html with the hints as `<meta name="studio-worker-…">` tags, read by the sign-in page. */
function withSignInHints(html: Buffer, where: SignInHints): Buffer {
  return Buffer.from(withMetaTags(html.toString('utf8'), { 'studio-worker-config-dir': where.configDir, 'studio-worker-ui-command': where.uiCommand }));
}

export interface StaticFile {
  body: Buffer;
  contentType: string;
}

const NOT_INSTALLED_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>studio-worker</title></head>
<body><h1>studio-worker</h1>
<p>The web UI is not installed in this build. The local API is running: see docs/local-api.md,
or use the CLI (<code>studio-worker status</code>, <code>studio-worker logs --follow</code>).</p>
</body></html>
`;

/**
 * The web UI's static files: `/` is index.html, `/ui/<path>` a file under the UI dir, `/kit/<path>`
 * one under the web kit's dir (what the UI shares with the studio dashboard). They hold no data
 * (every API call they make carries the bearer token), so they are served without auth. Paths that
 * leave their dir are refused. Without an installed UI, `/` answers a page that says so.
 */
export class StaticUi {
  readonly dir: string;
  readonly kitDir: string;
  readonly #where: SignInHints | undefined;

  /** `where`: told to the sign-in page (in index.html's meta tags), so it names this daemon's config and command. */
  constructor(dir = DEFAULT_UI_DIR, kitDir = KIT_DIR, where?: SignInHints) {
    this.dir = resolve(dir);
    this.kitDir = resolve(kitDir);
    this.#where = where;
  }

  /** Whether the request is one for the UI (answered by `serve`). */
  handles(method: string, path: string): boolean {
    return (method === 'GET' || method === 'HEAD') && (path === '/' || path === '/index.html' || path.startsWith('/ui/') || path.startsWith(KIT_URL_PREFIX));
  }

  /** The file, the not-installed page for `/`, or null (404). */
  async serve(path: string): Promise<StaticFile | null> {
    const index = path === '/' || path === '/index.html';
    const file = index
      ? join(this.dir, 'index.html')
      : path.startsWith(KIT_URL_PREFIX)
        ? fileInside(this.kitDir, path.slice(KIT_URL_PREFIX.length))
        : fileInside(this.dir, path.slice('/ui/'.length));
    if (file === null) return null;
    try {
      if (!(await stat(file)).isFile()) return null;
      const body = await readFile(file);
      if (index && this.#where) return { body: withSignInHints(body, this.#where), contentType: CONTENT_TYPES['.html'] as string };
      return { body, contentType: CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream' };
    } catch {
      if (index) return { body: Buffer.from(NOT_INSTALLED_PAGE), contentType: CONTENT_TYPES['.html'] as string };
      return null;
    }
  }
}
