// Checks that run inside the dashboard (passed to page.evaluate, so each function is
// self-contained). The ones both front ends run come from the web kit.

export { contrastProblems, focusRing, overflowsHorizontally, unlabelledControls } from '@studio-worker/web-kit/page-checks';

// Module-local browser globals for the type checker (see the web kit's page-checks.ts).
declare const document: any;

/** True once the detail's result image has loaded and decoded (naturalWidth > 0). */
export function resultImageLoaded(): boolean {
  const img = document.querySelector('#job-detail img.result-image');
  return !!img && img.complete && img.naturalWidth > 0;
}

export function resultImageWidth(): number {
  return document.querySelector('#job-detail img.result-image')?.naturalWidth ?? 0;
}

/** True once the detail's audio player has read the result's metadata (a real, playable file). */
export function resultAudioLoaded(): boolean {
  const audio = document.querySelector('#job-detail audio');
  return !!audio && audio.readyState >= 1 && audio.duration > 0;
}

/** True once a job row is listed for every one of `ids`. */
export function jobRowsListed(ids: string[]): boolean {
  return ids.every((id) => document.querySelector(`button.job-row[data-job-id="${id}"]`));
}

/** True once the New job form's model picker has `id` selected. */
export function modelSelected(id: string): boolean {
  return document.querySelector('#submit-model')?.value === id;
}
