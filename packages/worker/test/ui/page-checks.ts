// Checks that run inside the worker's web UI (passed to page.evaluate, so each function is
// self-contained). The ones both front ends run come from the web kit.

export { contrastProblems, focusRing, overflowsHorizontally, unlabelledControls } from '@studio-worker/web-kit/page-checks';

// Module-local browser globals for the type checker (see the web kit's page-checks.ts).
declare const document: any;

/** True once the image matched by `selector` has loaded and decoded (naturalWidth > 0). */
export function imageLoaded(selector: string): boolean {
  const img = document.querySelector(selector);
  return !!img && img.complete && img.naturalWidth > 0;
}

/** The image's decoded width and height. */
export function imageSize(selector: string): { width: number; height: number } {
  const img = document.querySelector(selector);
  return { width: img?.naturalWidth ?? 0, height: img?.naturalHeight ?? 0 };
}

declare const navigator: any;
declare const sessionStorage: any;
declare const localStorage: any;

/** The clipboard's text (the context must have the clipboard-read permission). */
export function readClipboard(): Promise<string> {
  return navigator.clipboard.readText();
}

/** How far (px) the scrollable element is from showing its last line. */
export function distanceFromBottom(selector: string): number {
  const el = document.querySelector(selector);
  return el ? el.scrollHeight - el.clientHeight - el.scrollTop : Number.NaN;
}

export function activeElementId(): string {
  return document.activeElement?.id ?? '';
}

/** What the page keeps in storage: the session token under `key`, and how many items localStorage holds. */
export function storedToken(key: string): { session: string | null; localItems: number } {
  return { session: sessionStorage.getItem(key), localItems: localStorage.length };
}
