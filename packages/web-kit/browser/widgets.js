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
