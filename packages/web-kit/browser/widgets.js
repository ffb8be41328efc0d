import { h } from './dom.js';
import { absoluteTime, relativeTime } from './format.js';

/** A <time> that keeps saying "12 s ago"; refreshRelativeTimes() updates every one on the page. */
export function timeAgo(iso) {
  if (!iso) return h('span', { class: 'muted', text: 'never' });
  return h('time', { datetime: iso, title: absoluteTime(iso), 'data-relative': true }, relativeTime(iso));
}

export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time[data-relative]')) {
    const text = relativeTime(el.getAttribute('datetime'), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** A status pill; each app's stylesheet gives every tone colours that meet WCAG AA. */
export function badge(text, tone = text) {
  return h('span', { class: `badge badge-${tone}` }, text);
}

/**
 * Engine progress: phase, step and, when the fraction is known, a bar with its percentage.
 * `label` names the bar for assistive technology (default: the phase).
 */
export function progressView(progress, label = progress.phase) {
  const steps = progress.step !== undefined && progress.total ? ` ${progress.step}/${progress.total}` : '';
  const known = typeof progress.fraction === 'number';
  const value = known ? Math.round(Math.min(1, Math.max(0, progress.fraction)) * 100) : undefined;
  return h(
    'span',
    { class: 'progress' },
    h('span', { class: 'phase', text: `${progress.phase}${steps}` }),
    known ? h('progress', { max: 100, value, 'aria-label': `${label}: ${value}%` }) : null,
    known ? h('span', { class: 'percent', text: `${value}%` }) : null,
  );
}

/** A definition list from [term, value] pairs; pairs with an empty value are left out. */
export function facts(pairs, className = 'facts') {
  return h(
    'dl',
    { class: className },
    pairs
      .filter(([, value]) => value !== null && value !== undefined && value !== '')
      .map(([term, value]) => h('div', {}, h('dt', { text: term }), h('dd', {}, value))),
  );
}

/**
 * One row of a job list: a button that selects the job (`aria-current` on the selected one), keeps
 * its focus across re-renders (`data-focus-key`) and names its job (`data-job-id`). The row's
 * content is each app's own; the list's look is base.css's `.job-list` and `.job-row`.
 */
export function jobRow({ jobId, focusKey, selected, onSelect, itemClass, rowClass }, ...content) {
  return h(
    'li',
    itemClass ? { class: itemClass } : {},
    h(
      'button',
      {
        type: 'button',
        class: rowClass ? `job-row ${rowClass}` : 'job-row',
        'aria-current': selected ? 'true' : null,
        'data-focus-key': focusKey,
        'data-job-id': jobId,
        onClick: onSelect,
      },
      ...content,
    ),
  );
}
