// Display formatting both web front ends share. Nothing here changes data that is sent anywhere.

/** Collapse whitespace and shorten to `max` characters (a row stays one line). */
export function truncate(text, max) {
  const flat = String(text ?? '').replace(/\s+/g, ' ').trim();
  const chars = [...flat];
  return chars.length <= max ? flat : `${chars.slice(0, max - 1).join('')}…`;
}

export function relativeTime(iso, now = Date.now()) {
  const t = Date.parse(iso ?? '');
  if (!Number.isFinite(t)) return 'never';
  const seconds = Math.round((now - t) / 1000);
  const abs = Math.abs(seconds);
  const say = (n, unit) => (seconds >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`);
  if (abs < 5) return 'just now';
  if (abs < 60) return say(abs, 's');
  if (abs < 3600) return say(Math.round(abs / 60), 'min');
  if (abs < 48 * 3600) return say(Math.round(abs / 3600), 'h');
  return say(Math.round(abs / 86400), 'days');
}

export function absoluteTime(iso) {
  const t = Date.parse(iso ?? '');
  return Number.isFinite(t) ? new Date(t).toLocaleString() : '';
}

export function formatGb(gb) {
  if (!Number.isFinite(gb)) return '';
  return `${Number.isInteger(gb) ? gb : gb.toFixed(1)} GB`;
}
