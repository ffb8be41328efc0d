import { h, patchList, patchRegion } from '/kit/dom.js';
import { truncate } from '../format.js';
import { badge, jobRow, progressView, syntheticTag, timeAgo } from '../widgets.js';

export const STATUSES = ['queued', 'claimed', 'running', 'done', 'failed', 'cancelled'];
/** Rows kept in the DOM; older ones stay reachable through "Load older" and the filter. */
export const MAX_ROWS = 300;

export function jobsSection(actions) {
  const olderButton = h('button', { type: 'button', class: 'secondary', onClick: () => actions.loadOlder() }, 'Load older jobs');
  return h(
    'section',
    { class: 'panel', id: 'jobs', 'aria-labelledby': 'jobs-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'jobs-title', text: 'Jobs' }), h('span', { class: 'count muted' })),
    h('div', { class: 'filters', role: 'group', 'aria-label': 'Show jobs by status' }),
    h('p', { class: 'empty muted', text: 'No jobs here yet.' }),
    h('ul', { class: 'job-list', 'aria-label': 'Jobs, newest first' }),
    h('div', { class: 'list-foot' }, olderButton),
  );
}

/**
 * `view`: {jobs (filtered, newest first), counts, filter, selectedId, hasOlder, loadingOlder}.
 * `actions`: setFilter(status|''), selectJob(id), loadOlder().
 */
export function renderJobs(section, view, actions) {
  const total = Object.values(view.counts).reduce((sum, n) => sum + n, 0);
  section.querySelector('.count').textContent = `${total} in total`;
  patchRegion(section.querySelector('.filters'), JSON.stringify([view.filter, view.counts]), () => [
    filterButton('', 'All', total, view.filter, actions),
    ...STATUSES.map((status) => filterButton(status, status, view.counts[status] ?? 0, view.filter, actions)),
  ]);
  const rows = view.jobs.slice(0, MAX_ROWS);
  section.querySelector('.empty').hidden = rows.length > 0;
  patchList(section.querySelector('.job-list'), rows, {
    key: (job) => job.id,
    // Progress changes often; it is patched in place so the row (a button) stays the same element.
    signature: (job) => JSON.stringify([job.id === view.selectedId, { ...job, progress: undefined, updatedAt: undefined, attempts: undefined }]),
    render: (job) => studioJobRow(job, job.id === view.selectedId, actions),
    update: (node, job) => patchRegion(node.querySelector('.progress-slot'), JSON.stringify(liveProgress(job) ?? null), () => (liveProgress(job) ? progressView(liveProgress(job)) : [])),
  });
  const foot = section.querySelector('.list-foot');
  foot.hidden = !view.hasOlder;
  const older = foot.querySelector('button');
  older.disabled = view.loadingOlder;
  older.textContent = view.loadingOlder ? 'Loading…' : 'Load older jobs';
}

function filterButton(status, label, count, current, actions) {
  return h(
    'button',
    {
      type: 'button',
      class: 'chip-button',
      'aria-pressed': String(status === current),
      'data-focus-key': `filter-${status || 'all'}`,
      onClick: () => actions.setFilter(status),
    },
    label,
    ' ',
    h('span', { class: 'chip-count', text: String(count) }),
  );
}

/** Progress is shown only while a worker holds the job. */
export function liveProgress(job) {
  return job.progress && (job.status === 'running' || job.status === 'claimed') ? job.progress : undefined;
}

function studioJobRow(job, selected, actions) {
  return jobRow(
    { jobId: job.id, focusKey: `job-${job.id}`, selected, onSelect: () => actions.selectJob(job.id) },
    h('span', { class: 'row-line' }, badge(job.status), h('span', { class: 'model', text: job.model }), syntheticTag(job.model), h('span', { class: 'spacer' }), timeAgo(job.createdAt)),
    h('span', { class: 'prompt-preview', text: truncate(job.prompt, 120) || '(no prompt)' }),
    h(
      'span',
      { class: 'row-line meta' },
      h('span', { text: `attempt ${job.attempt}` + (job.failures > 0 ? ` (${job.failures}/${job.maxAttempts} failed)` : '') }),
      job.workerId || job.lastWorkerId ? h('span', {}, 'worker ', h('code', { text: job.workerId ?? job.lastWorkerId })) : null,
      h('span', { class: 'progress-slot' }),
    ),
    job.lastError && job.status !== 'done' ? h('span', { class: 'row-error', text: truncate(job.lastError, 160) }) : null,
  );
}

