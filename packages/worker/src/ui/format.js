// Display formatting only: nothing here changes what is sent to the daemon.

export { absoluteTime, formatGb, relativeTime, truncate } from '/kit/format.js';

const KIND_LABELS = {
  image: 'image',
  video: 'video',
  llm: 'text',
  audio_tts: 'speech',
  audio_stt: 'transcription',
};

/** "image", "text", … as the header's "Running <kind>" says it. */
export function kindLabel(kind) {
  return KIND_LABELS[kind] ?? String(kind ?? '');
}

/** "0:07", "12:30", "1:02:03". */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** Seconds from `startIso` to `endIso` (or now). */
export function secondsBetween(startIso, endIso, now = Date.now()) {
  const start = Date.parse(startIso ?? '');
  const end = endIso ? Date.parse(endIso) : now;
  return Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, (end - start) / 1000) : 0;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** "Today", "Yesterday", or the local date, for grouping the job history by day. */
export function dayLabel(iso, now = new Date()) {
  const t = new Date(iso ?? '');
  if (!Number.isFinite(t.getTime())) return 'Unknown day';
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const diff = Math.round((day(now) - day(t)) / 86_400_000);
  if (diff === 0) return 'Today';
  if (diff === 1) return 'Yesterday';
  return t.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

export function percent(fraction) {
  return Math.round(Math.min(1, Math.max(0, fraction)) * 100);
}

/** A log line as one copyable text line. */
export function logLineText(line) {
  return `${line.ts} ${String(line.level).toUpperCase().padEnd(5)} [${line.module}] ${line.msg}${line.jobId ? ` (job ${line.jobId})` : ''}`;
}
