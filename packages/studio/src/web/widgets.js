import { h } from '/kit/dom.js';
import { isSynthetic } from './format.js';

export { badge, facts, jobRow, progressView, refreshRelativeTimes, timeAgo } from '/kit/widgets.js';

/** A "test output" pill for jobs run on a synthetic model. */
export function syntheticTag(modelId) {
  return isSynthetic(modelId) ? h('span', { class: 'badge badge-test', title: 'Synthetic model: test output, not a real generation' }, 'test output') : null;
}
