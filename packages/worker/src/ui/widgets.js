import { h } from '/kit/dom.js';
import { progressView as kitProgressView } from '/kit/widgets.js';
import { percent } from './format.js';

export { badge, facts, jobRow, refreshRelativeTimes, timeAgo } from '/kit/widgets.js';

/** Engine progress (the kit's bar, named `label`); "starting…" before the first report. */
export function progressView(progress, label = 'Progress') {
  return progress ? kitProgressView(progress, label) : h('span', { class: 'progress muted', text: 'starting…' });
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
