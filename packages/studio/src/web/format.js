// Display formatting only: nothing here changes data that is sent anywhere.

import { formatGb } from '/kit/format.js';

export { absoluteTime, formatGb, relativeTime, truncate } from '/kit/format.js';

export const KIND_LABELS = {
  image: 'Image',
  video: 'Video',
  llm: 'Text (LLM)',
  audio_tts: 'Text to speech',
  audio_stt: 'Speech to text',
};

export const TERMINAL = new Set(['done', 'failed', 'cancelled']);

export function kindLabel(kind) {
  return KIND_LABELS[kind] ?? kind;
}

/** Synthetic models make deterministic test patterns, never real output. */
export function isSynthetic(modelId) {
  return typeof modelId === 'string' && (modelId === 'synthetic' || modelId.startsWith('synthetic-'));
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** "sd-cpp:*" means the engine serves any model of the kind. */
export function describeModelEntry(entry) {
  return entry.endsWith(':*') ? `${entry.slice(0, -2)} (any model)` : entry;
}

/** A worker's GPU memory and threshold, without claiming a clamp that did not happen (no GPU memory detected). */
export function describeVram(totalGb, thresholdGb) {
  if (!(totalGb > 0)) return `not detected (takes jobs up to ${formatGb(thresholdGb)}, as its operator set)`;
  return `${formatGb(totalGb)} (jobs up to ${formatGb(thresholdGb)})`;
}
