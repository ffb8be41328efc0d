import { h } from '/kit/dom.js';
import { percent } from './format.js';

export { badge, facts, refreshRelativeTimes, timeAgo } from '/kit/widgets.js';

/** Engine progress: phase, step and, when the fraction is known, a bar with its percentage. */
export function progressView(progress, label = 'Progress') {
  if (!progress) return h('span', { class: 'progress muted', text: 'starting…' });
  const steps = progress.step !== undefined && progress.total ? ` ${progress.step}/${progress.total}` : '';
  const known = typeof progress.fraction === 'number';
  const value = known ? percent(progress.fraction) : undefined;
  return h(
    'span',
    { class: 'progress' },
    h('span', { class: 'phase', text: `${progress.phase}${steps}` }),
    known ? h('progress', { max: 100, value, 'aria-label': `${label}: ${value}%` }) : null,
    known ? h('span', { class: 'percent', text: `${value}%` }) : null,
  );
}

/** A byte-count bar (model downloads); indeterminate while the total is unknown. */
export function bytesBar(done, total, label) {
  if (Number.isFinite(total) && total > 0) {
    const value = percent(done / total);
    return h('progress', { max: 100, value, 'aria-label': `${label}: ${value}%` });
  }
  return h('progress', { 'aria-label': `${label}: size unknown` });
}

/** Copy text to the clipboard; answers whether it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission (an embedded browser): the old way still works on a user gesture.
    const area = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true', tabindex: '-1' });
    area.value = text;
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
    area.remove();
    return copied;
  }
}

/** A Copy button; `text()` is read at click time; the outcome is announced through `say`. */
export function copyButton(label, text, say, focusKey) {
  return h(
    'button',
    {
      type: 'button',
      class: 'secondary small',
      'data-focus-key': focusKey,
      async onClick() {
        const content = text();
        const copied = await copyText(content);
        say(copied ? `Copied ${content ? content.split('\n').length : 0} lines.` : 'Could not copy: the browser refused the clipboard.');
      },
    },
    label,
  );
}
