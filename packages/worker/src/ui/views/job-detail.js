import { h, patchRegion } from '/kit/dom.js';
import { formatDuration, kindLabel, logLineText, secondsBetween } from '../format.js';
import { badge, copyButton, facts, progressView, timeAgo } from '../widgets.js';

const REGIONS = ['head', 'status', 'reason', 'thumb', 'info', 'prompt', 'log'];

/**
 * The selected job: thumbnail, facts, the full prompt, why it failed, and its log with Copy.
 * Each region is rebuilt only when what it shows changed, so a progress update does not drop a
 * text selection in the prompt or move the log's scroll position.
 * `ctx`: {store, closeDetail(), thumbnailUrl(jobId), announce}.
 */
export function createJobDetail(ctx) {
  const section = h(
    'section',
    { class: 'panel job-detail', id: 'job-detail', 'aria-labelledby': 'job-detail-title' },
    REGIONS.map((name) => h('div', { class: `detail-${name}` })),
  );
  const region = (name) => section.querySelector(`.detail-${name}`);

  function render() {
    const { store } = ctx;
    const listed = [...(store.jobs?.running ?? []), ...(store.jobs?.recent ?? [])].find((job) => job.jobId === store.selectedJobId);
    const fetched = store.jobDetail?.jobId === store.selectedJobId ? store.jobDetail : undefined;
    // The list is fresher for status and progress; the fetched detail adds the log.
    const job = listed ? { ...fetched, ...listed, log: fetched?.log } : fetched;
    if (!store.selectedJobId || !job) {
      patchRegion(region('head'), store.selectedJobId ? `gone:${store.selectedJobId}` : 'none', () => [
        h('h2', { id: 'job-detail-title', tabindex: '-1', text: 'Job details' }),
        h('p', { class: 'muted', text: store.selectedJobId ? `Job ${store.selectedJobId} is no longer among the last 100 jobs.` : 'Choose a job to see its prompt, result and log.' }),
      ]);
      for (const name of REGIONS.slice(1)) patchRegion(region(name), 'none', () => []);
      return;
    }
    const live = job.status === 'running' || job.status === 'waiting';
    patchRegion(region('head'), job.jobId, () =>
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'job-detail-title', tabindex: '-1' }, 'Job ', h('code', { text: job.jobId })),
        h('button', { type: 'button', class: 'secondary small', 'data-focus-key': 'close-detail', onClick: () => ctx.closeDetail() }, 'Close'),
      ),
    );
    patchRegion(region('status'), JSON.stringify([job.status, live ? (job.progress ?? null) : null]), () =>
      h('p', { class: 'status-line' }, h('span', { class: 'visually-hidden', text: 'Status: ' }), badge(job.status), live && job.status === 'running' ? progressView(job.progress, `Progress of ${job.jobId}`) : null),
    );
    patchRegion(region('reason'), job.reason ?? '', () =>
      job.reason ? h('p', { class: 'error failure-reason' }, h('strong', { text: job.status === 'failed' ? 'Why it failed: ' : 'Why it was cancelled: ' }), job.reason) : [],
    );
    const thumb = job.hasThumbnail ? ctx.thumbnailUrl(job.jobId) : undefined;
    patchRegion(region('thumb'), thumb ?? '', () =>
      thumb ? h('figure', { class: 'result' }, h('img', { class: 'result-image', src: thumb, alt: `Result of job ${job.jobId} (thumbnail)` }), h('figcaption', { class: 'muted', text: 'Thumbnail of the result (at most 384 px).' })) : [],
    );
    patchRegion(region('info'), JSON.stringify([job.jobId, job.status, job.finishedAt ?? '', job.attempt ?? '']), () =>
      facts([
        ['Source', job.source === 'studio' ? 'studio job' : 'local job (this machine)'],
        ['Kind', kindLabel(job.kind)],
        ['Model', h('code', { text: job.model })],
        ['Engine', job.engine],
        ['Attempt', job.attempt !== undefined ? String(job.attempt) : null],
        ['Started', timeAgo(job.startedAt)],
        ['Finished', job.finishedAt ? timeAgo(job.finishedAt) : null],
        ['Took', job.finishedAt ? formatDuration(secondsBetween(job.startedAt, job.finishedAt)) : null],
      ]),
    );
    patchRegion(region('prompt'), JSON.stringify([job.jobId, job.prompt]), () => [
      h('h3', { text: 'Prompt' }),
      h('pre', { class: 'prompt-full', tabindex: '0', 'aria-label': 'Full prompt' }, job.prompt || '(no prompt)'),
    ]);
    const log = job.log;
    const lines = log?.lines ?? [];
    patchRegion(region('log'), JSON.stringify([job.jobId, lines.length, log?.dropped ?? 0, lines.at(-1)?.ts ?? '', Boolean(log)]), () => [
      h('div', { class: 'panel-head' }, h('h3', { text: 'Job log' }), log ? copyButton('Copy log', () => lines.map(logLineText).join('\n'), ctx.announce, 'copy-job-log') : null),
      !log
        ? h('p', { class: 'muted', text: 'Loading the log…' })
        : lines.length === 0
          ? h('p', { class: 'muted', text: 'No log lines for this job.' })
          : h(
              'pre',
              { class: 'log job-log', tabindex: '0', 'aria-label': `Log of job ${job.jobId}` },
              log.dropped > 0 ? `(${log.dropped} earlier lines dropped)\n` : '',
              lines.map(logLineText).join('\n'),
            ),
    ]);
  }

  return { section, render };
}
