import { registerHooks } from 'node:module';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KIT_URL_PREFIX, plainPathSegments } from './pages.ts';

export { KIT_URL_PREFIX, plainPathSegments, withMetaTags } from './pages.ts';

/**
 * The web kit's browser files (ES modules and base.css), as both servers serve them under
 * `KIT_URL_PREFIX`. The worker's release build copies this folder; a bundled worker serves its copy.
 */
export const KIT_DIR = join(import.meta.dirname, '..', 'browser');


/**
 * The file a URL path (already stripped of its prefix, still percent-encoded) names inside `dir`, or
 * null when it is not a plain path below `dir`: no `..`, `.` or empty segments, no backslashes or NUL,
 * nothing that decodes badly. The result is checked to be inside `dir` as well.
 */
export function fileInside(dir: string, encoded: string): string | null {
  const parts = plainPathSegments(encoded);
  if (parts === null) return null;
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
