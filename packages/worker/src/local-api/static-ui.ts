import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { UI_DIR } from '../package-layout.ts';

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
 * The web UI's static files: `/` is index.html, `/ui/<path>` a file under the UI dir. They hold no
 * data (every API call they make carries the bearer token), so they are served without auth. Paths
 * that leave the UI dir are refused. Without an installed UI, `/` answers a page that says so.
 */
export class StaticUi {
  readonly dir: string;

  constructor(dir = DEFAULT_UI_DIR) {
    this.dir = resolve(dir);
  }

  /** Whether the request is one for the UI (answered by `serve`). */
  handles(method: string, path: string): boolean {
    return (method === 'GET' || method === 'HEAD') && (path === '/' || path === '/index.html' || path.startsWith('/ui/'));
  }

  /** The file, the not-installed page for `/`, or null (404). */
  async serve(path: string): Promise<StaticFile | null> {
    const relative = path === '/' || path === '/index.html' ? 'index.html' : safeRelative(path.slice('/ui/'.length));
    if (relative === null) return null;
    const file = join(this.dir, relative);
    if (file !== this.dir && !file.startsWith(this.dir + sep)) return null;
    try {
      if (!(await stat(file)).isFile()) return null;
      return { body: await readFile(file), contentType: CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream' };
    } catch {
      if (relative === 'index.html') return { body: Buffer.from(NOT_INSTALLED_PAGE), contentType: CONTENT_TYPES['.html'] as string };
      return null;
    }
  }
}

function safeRelative(encoded: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return null;
  }
  if (decoded === '' || decoded.includes('\0') || decoded.includes('\\')) return null;
  const parts = decoded.split('/');
  if (parts.some((part) => part === '..' || part === '.' || part === '')) return null;
  return parts.join(sep);
}
