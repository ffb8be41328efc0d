import { registerHooks } from 'node:module';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The web kit's browser files (ES modules and base.css), as both servers serve them under
 * `KIT_URL_PREFIX`. The worker's release build copies this folder; a bundled worker serves its copy.
 */
export const KIT_DIR = join(import.meta.dirname, '..', 'browser');

/** The URL path both front ends import the kit from: `import { h } from '/kit/dom.js'`. */
export const KIT_URL_PREFIX = '/kit/';

/**
 * The file a URL path (already stripped of its prefix, still percent-encoded) names inside `dir`, or
 * null when it is not a plain path below `dir`: no `..`, `.` or empty segments, no backslashes or NUL,
 * nothing that decodes badly. The result is checked to be inside `dir` as well.
 */
export function fileInside(dir: string, encoded: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return null;
  }
  if (decoded === '' || decoded.includes('\0') || decoded.includes('\\')) return null;
  const parts = decoded.split('/');
  if (parts.some((part) => part === '..' || part === '.' || part === '')) return null;
  const file = join(dir, ...parts);
  return file.startsWith(dir + sep) ? file : null;
}

/**
 * Let Node import the front ends' DOM-free modules as the browser does: `/kit/<file>` is the kit's
 * file. Unit tests that load a UI module directly (no server, no page) call this once first.
 */
export function resolveKitImportsInNode(): void {
  if (kitHooksRegistered) return;
  kitHooksRegistered = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (!specifier.startsWith(KIT_URL_PREFIX)) return nextResolve(specifier, context);
      const file = fileInside(KIT_DIR, specifier.slice(KIT_URL_PREFIX.length));
      if (file === null) throw new Error(`${specifier} is not a file of the web kit`);
      return nextResolve(pathToFileURL(file).href, context);
    },
  });
}

let kitHooksRegistered = false;

/**
 * A page with `<meta name="…" content="…">` tags (HTML-escaped) added to its head: how a server tells
 * a static page something about itself (the dashboard's and the worker UI's sign-in hints).
 */
export function withMetaTags(html: string, metas: Readonly<Record<string, string>>): string {
  const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const tags = Object.entries(metas)
    .map(([name, content]) => `<meta name="${escape(name)}" content="${escape(content)}">`)
    .join('');
  return html.replace('</head>', `${tags}</head>`);
}
