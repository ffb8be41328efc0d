/**
 * The parts of serving the web kit and the front ends that need no file system, so a host without
 * one (the studio's Cloudflare Worker, which bundles the files) runs the same checks. No `node:`
 * import here; index.ts re-exports it with the disk helpers.
 */

/** The URL path both front ends import the kit from: `import { h } from '/kit/dom.js'`. */
export const KIT_URL_PREFIX = '/kit/';

/**
 * The segments of a URL path (already stripped of its prefix, still percent-encoded) when it is a
 * plain relative path: decodes cleanly, no `..`, `.` or empty segments, no backslash or NUL.
 * Null otherwise.
 */
export function plainPathSegments(encoded: string): string[] | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return null;
  }
  if (decoded === '' || decoded.includes('\0') || decoded.includes('\\')) return null;
  const parts = decoded.split('/');
  if (parts.some((part) => part === '..' || part === '.' || part === '')) return null;
  return parts;
}

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
