import { h, patchList, patchRegion, setText } from '/kit/dom.js';
import { dayLabel, formatDuration, kindLabel, secondsBetween, truncate } from '../format.js';
import { badge, jobRow, progressView } from '../widgets.js';
import { createJobDetail } from './job-detail.js';

const SOURCE_FILTERS = [
  ['all', 'All'],
  ['studio', 'Studio'],
  ['local', 'Local'],
];
const STATUS_FILTERS = [
  ['all', 'Any outcome'],
  ['done', 'Done'],
  ['failed', 'Failed'],
  ['cancelled', 'Cancelled'],
];

/**
 * The Jobs page: "Now running" cards with live progress, the history (newest first, grouped by
 * day, filtered by source and outcome) with thumbnails, and the selected job's detail.
 * `ctx`: {store, selectJob(id), setHistoryFilter(name, value), thumbnailUrl(jobId), announce}.
 */
export function createJobsView(ctx) {
  const runningList = h('ul', { class: 'cards running-list', 'aria-label': 'Jobs running now' });
  const runningEmpty = h('p', { class: 'empty muted', text: 'Nothing is running. Jobs appear here when the studio offers one or a local client asks.' });
  const filters = h('div', { class: 'filters' });
  const history = h('div', { class: 'history' });
  const historyEmpty = h('p', { class: 'empty muted' });
  const detail = createJobDetail(ctx);
  const section = h(
    'section',
    { class: 'page', id: 'page-jobs', 'aria-labelledby': 'jobs-title' },
    h('h1', { id: 'jobs-title', tabindex: '-1', text: 'Jobs' }),
    h(
      'div',
      { class: 'jobs-layout' },
      h(
        'div',
        { class: 'jobs-main' },
        h('section', { class: 'panel', 'aria-labelledby': 'running-title' }, h('h2', { id: 'running-title', text: 'Now running' }), runningEmpty, runningList),
        h('section', { class: 'panel', 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title', text: 'History' }), filters, historyEmpty, history),
      ),
      detail.section,
    ),
  );

  function render() {
    const { store } = ctx;
    const running = store.jobs?.running ?? [];
    runningEmpty.hidden = running.length > 0;
    patchList(runningList, running, {
      key: (job) => job.jobId,
      signature: (job) => JSON.stringify([job.jobId === store.selectedJobId, job.status, job.model, job.kind, job.source, job.prompt]),
      render: (job) => runningCard(job, job.jobId === store.selectedJobId, ctx),
      update: (node, job) => {
        patchRegion(node.querySelector('.progress-slot'), JSON.stringify(job.progress ?? null), () => (job.status === 'waiting' ? h('span', { class: 'muted', text: 'waiting for the engine' }) : progressView(job.progress, `Progress of ${job.jobId}`)));
        setText(node.querySelector('.elapsed'), formatDuration(secondsBetween(job.startedAt, null)));
      },
    });

    const filter = store.historyFilter;
    patchRegion(filters, JSON.stringify(filter), () => [
      filterGroup('Show jobs from', 'source', SOURCE_FILTERS, filter.source, ctx),
      filterGroup('Show jobs that', 'status', STATUS_FILTERS, filter.status, ctx),
    ]);
    const recent = (store.jobs?.recent ?? []).filter((job) => (filter.source === 'all' || job.source === filter.source) && (filter.status === 'all' || job.status === filter.status));
    const total = store.jobs?.recent?.length ?? 0;
    historyEmpty.hidden = recent.length > 0;
    setText(historyEmpty, total === 0 ? 'No finished jobs yet (the daemon keeps the last 100).' : 'No finished job matches these filters.');
    const days = [];
    for (const job of recent) {
      const label = dayLabel(job.finishedAt ?? job.startedAt);
      if (days.at(-1)?.label !== label) days.push({ label, jobs: [] });
      days.at(-1).jobs.push(job);
    }
    patchList(history, days, {
      key: (day) => day.label,
      signature: (day) => day.label,
      render: (day) => {
        const id = `day-${day.label.replace(/\W+/g, '-')}`;
        return h('section', { class: 'day', 'aria-labelledby': id }, h('h3', { id, text: day.label }), h('ul', { class: 'job-list' }));
      },
      update: (node, day) =>
        patchList(node.querySelector('ul'), day.jobs, {
          key: (job) => job.jobId,
          signature: (job) => JSON.stringify([job.jobId === store.selectedJobId, job.status, job.reason ?? '', job.finishedAt ?? '', job.model]),
          render: (job) => historyRow(job, job.jobId === store.selectedJobId, ctx),
          update: (row, job) => patchThumb(row.querySelector('.thumb-slot'), job, ctx.thumbnailUrl(job.jobId)),
        }),
    });
    detail.render();
  }

  return { id: 'jobs', title: 'Jobs', section, render, heading: () => section.querySelector('#jobs-title') };
}

function filterGroup(label, name, options, current, ctx) {
  return h(
    'div',
    { class: 'chip-group', role: 'group', 'aria-label': label },
    options.map(([value, text]) =>
      h(
        'button',
        {
          type: 'button',
          class: 'chip-button',
          'aria-pressed': String(value === current),
          'data-focus-key': `filter-${name}-${value}`,
          onClick: () => ctx.setHistoryFilter(name, value),
        },
        text,
      ),
    ),
  );
}

function runningCard(job, selected, ctx) {
  return jobRow(
    { jobId: job.jobId, focusKey: `running-${job.jobId}`, selected, onSelect: () => ctx.selectJob(job.jobId), itemClass: 'card running-card' },
    h(
      'span',
      { class: 'row-line' },
      badge(job.status),
      h('span', { class: 'model', text: job.model }),
      h('span', { class: 'muted', text: `${kindLabel(job.kind)} · ${job.engine} · ${job.source}` }),
      h('span', { class: 'spacer' }),
      h('span', { class: 'muted' }, h('span', { class: 'visually-hidden', text: 'elapsed ' }), h('span', { class: 'elapsed' })),
    ),
    h('span', { class: 'prompt-preview', text: truncate(job.prompt, 140) || '(no prompt)' }),
    h('span', { class: 'progress-slot' }),
  );
}

function historyRow(job, selected, ctx) {
  const duration = job.finishedAt ? formatDuration(secondsBetween(job.startedAt, job.finishedAt)) : '';
  return jobRow(
    { jobId: job.jobId, focusKey: `job-${job.jobId}`, selected, onSelect: () => ctx.selectJob(job.jobId), rowClass: 'with-thumb' },
    h('span', { class: 'thumb-slot' }),
    h(
      'span',
      { class: 'row-body' },
      h(
        'span',
        { class: 'row-line' },
        badge(job.status),
        h('span', { class: 'model', text: job.model }),
        h('span', { class: `source source-${job.source}`, text: job.source }),
        h('span', { class: 'spacer' }),
        h('time', { class: 'muted', datetime: job.finishedAt ?? job.startedAt, text: clock(job.finishedAt ?? job.startedAt) }),
      ),
      h('span', { class: 'prompt-preview', text: truncate(job.prompt, 120) || '(no prompt)' }),
      h('span', { class: 'row-line meta' }, h('span', { text: `${kindLabel(job.kind)} · ${job.engine}` }), duration ? h('span', { text: `took ${duration}` }) : null),
      job.reason ? h('span', { class: 'row-error', text: truncate(job.reason, 160) }) : null,
    ),
  );
}

/** The row's thumbnail, once its blob URL is there; a plain tile with the kind otherwise. */
function patchThumb(slot, job, url) {
  patchRegion(slot, url ?? `none:${job.kind}`, () =>
    url ? h('img', { class: 'thumb', src: url, alt: `Thumbnail of job ${job.jobId}`, width: 56, height: 56 }) : h('span', { class: 'thumb thumb-none', 'aria-hidden': 'true', text: kindLabel(job.kind).slice(0, 1).toUpperCase() }),
  );
}

function clock(iso) {
  const t = new Date(iso ?? '');
  return Number.isFinite(t.getTime()) ? t.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';
}
