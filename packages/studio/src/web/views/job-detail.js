import { h, patchRegion } from '/kit/dom.js';
import { formatBytes, isSynthetic, kindLabel, TERMINAL } from '../format.js';
import { badge, facts, progressView, syntheticTag, timeAgo } from '../widgets.js';
import { liveProgress } from './jobs.js';

const REGIONS = ['head', 'banner', 'status', 'preview', 'actions', 'info', 'result', 'bottom'];

export function jobDetailSection() {
  return h(
    'section',
    { class: 'panel', id: 'job-detail', 'aria-labelledby': 'job-detail-title' },
    REGIONS.map((name) => h('div', { class: `detail-${name}` })),
  );
}

/**
 * `view`: {job, result} where result is {key, state:'loading'|'ready'|'error', type, url, text,
 * mime, bytes, message}. `actions`: cancelJob(jobId), retryJob(jobId), closeDetail().
 * Each region is rebuilt only when what it shows changed: progress events must not replace the
 * Cancel button under the pointer, drop a text selection in the prompt, or restart an audio player.
 */
export function renderJobDetail(section, view, actions) {
  const region = (name) => section.querySelector(`.detail-${name}`);
  const job = view.job;
  if (!job) {
    patchRegion(region('head'), 'none', () => [
      h('h2', { id: 'job-detail-title', tabindex: '-1', text: 'Job details' }),
      h('p', { class: 'muted', text: 'Select a job to see its prompt, attempts and result.' }),
    ]);
    for (const name of REGIONS.slice(1)) patchRegion(region(name), 'none', () => []);
    return;
  }
  const progress = liveProgress(job);
  const canCancel = !TERMINAL.has(job.status);
  const canRetry = job.status === 'failed' || job.status === 'cancelled';
  patchRegion(region('head'), job.id, () =>
    h(
      'div',
      { class: 'panel-head' },
      h('h2', { id: 'job-detail-title', tabindex: '-1' }, 'Job ', h('code', { text: job.id })),
      h('button', { type: 'button', class: 'secondary small', 'data-focus-key': 'close-detail', onClick: () => actions.closeDetail() }, 'Close'),
    ),
  );
  patchRegion(region('banner'), job.model, () =>
    isSynthetic(job.model)
      ? h('p', { class: 'test-banner', role: 'note' }, h('strong', { text: 'Test output. ' }), `Made by the synthetic model "${job.model}": a placeholder, not a real generation.`)
      : [],
  );
  patchRegion(region('status'), JSON.stringify([job.status, progress ?? null]), () =>
    h('p', { class: 'status-line' }, h('span', { class: 'visually-hidden', text: 'Status: ' }), badge(job.status), progress ? progressView(progress) : null),
  );
  // The image forming (live previews from the worker), while the job runs.
  const preview = canCancel ? view.preview : undefined;
  patchRegion(region('preview'), preview ?? '', () =>
    preview ? h('figure', { class: 'live-preview' }, h('img', { src: preview, alt: 'Live preview of the image being generated' }), h('figcaption', { class: 'muted', text: 'Live preview' })) : [],
  );
  patchRegion(region('actions'), `${job.id}|${canCancel}|${canRetry}`, () =>
    canCancel || canRetry
      ? h(
          'div',
          { class: 'card-actions' },
          canCancel ? h('button', { type: 'button', class: 'danger secondary', 'data-focus-key': 'cancel-job', onClick: () => actions.cancelJob(job.id) }, 'Cancel job') : null,
          canRetry ? h('button', { type: 'button', class: 'primary', 'data-focus-key': 'retry-job', onClick: () => actions.retryJob(job.id) }, 'Retry job') : null,
        )
      : [],
  );
  patchRegion(region('info'), JSON.stringify({ ...job, progress: undefined, updatedAt: undefined, attempts: undefined }), () => infoPart(job));
  patchRegion(region('result'), view.result ? `${view.result.key}|${view.result.state}` : '', () => (view.result ? resultPart(job, view.result) : []));
  patchRegion(region('bottom'), JSON.stringify([job.id, job.attempts ?? null, job.task]), () => bottomPart(job));
}

function infoPart(job) {
  return [
    job.lastError ? h('p', { class: 'error' }, h('strong', { text: job.status === 'failed' ? 'Failed: ' : 'Last error: ' }), job.lastError) : null,
    facts([
      ['Model', [job.model, ' ', syntheticTag(job.model)]],
      ['Kind', kindLabel(job.kind)],
      ['Engine', job.engine],
      ['Worker', job.workerId || job.lastWorkerId ? h('code', { text: job.workerId ?? job.lastWorkerId }) : null],
      ['Attempt', `${job.attempt} (${job.failures} of ${job.maxAttempts} allowed failures used)`],
      ['Created', timeAgo(job.createdAt)],
      ['Started', job.startedAt ? timeAgo(job.startedAt) : null],
      ['Finished', job.completedAt ? timeAgo(job.completedAt) : null],
      ['Next try', job.notBefore ? timeAgo(job.notBefore) : null],
      ['Priority', job.priority !== 0 ? String(job.priority) : null],
      ['Game', job.gameId || null],
      ['Asset', job.assetName || null],
    ]),
    h('h3', { text: 'Prompt' }),
    h('pre', { class: 'prompt-full' }, job.prompt || '(no prompt)'),
  ];
}

function resultPart(job, result) {
  const heading = h('h3', { text: 'Result' });
  if (result.state === 'loading') return [heading, h('p', { class: 'muted', role: 'status', text: 'Loading the result…' })];
  if (result.state === 'error') return [heading, h('p', { class: 'error', role: 'alert', text: `The result could not be loaded: ${result.message}` })];
  const caption = h(
    'figcaption',
    {},
    isSynthetic(job.model) ? h('strong', { class: 'test-label', text: 'TEST OUTPUT (synthetic) · ' }) : null,
    result.mime ? `${result.mime}, ` : '',
    result.bytes !== undefined ? formatBytes(result.bytes) : '',
    ' · ',
    h('a', { href: result.url, download: `${job.id}.${result.ext ?? 'bin'}` }, 'Download'),
  );
  if (result.type === 'json') return [heading, h('pre', { class: 'result-json', tabindex: '0', 'aria-label': 'Result JSON' }, result.text)];
  if (result.mime?.startsWith('image/')) {
    return [heading, h('figure', { class: 'result' }, h('img', { src: result.url, alt: `Result of job ${job.id}${isSynthetic(job.model) ? ' (synthetic test output)' : ''}`, class: 'result-image' }), caption)];
  }
  if (result.mime?.startsWith('audio/')) return [heading, h('figure', { class: 'result' }, h('audio', { src: result.url, controls: true, 'aria-label': `Result of job ${job.id}` }), caption)];
  if (result.mime?.startsWith('video/')) return [heading, h('figure', { class: 'result' }, h('video', { src: result.url, controls: true, 'aria-label': `Result of job ${job.id}` }), caption)];
  return [heading, h('figure', { class: 'result' }, caption)];
}

function bottomPart(job) {
  const attempts = job.attempts ?? [];
  return [
    h('h3', { text: 'Attempts' }),
    attempts.length === 0
      ? h('p', { class: 'muted', text: 'No attempt has ended yet.' })
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h('caption', { class: 'visually-hidden', text: `Attempts of job ${job.id}` }),
            h('thead', {}, h('tr', {}, ['Attempt', 'Worker', 'Outcome', 'Offered', 'Error'].map((t) => h('th', { scope: 'col', text: t })))),
            h(
              'tbody',
              {},
              attempts.map((a) =>
                h(
                  'tr',
                  {},
                  h('td', { text: String(a.attempt) }),
                  h('td', {}, h('code', { text: a.workerId })),
                  h('td', {}, badge(a.outcome, outcomeTone(a.outcome))),
                  h('td', {}, timeAgo(a.offeredAt)),
                  h('td', { class: 'wrap', text: a.error ?? '' }),
                ),
              ),
            ),
          ),
        ),
    h('details', { class: 'task-json' }, h('summary', { text: 'Task JSON' }), h('pre', { tabindex: '0', 'aria-label': 'Task JSON' }, JSON.stringify(job.task, null, 2))),
  ];
}

function outcomeTone(outcome) {
  switch (outcome) {
    case 'done':
      return 'done';
    case 'failed':
    case 'rejected':
      return 'failed';
    case 'running':
      return 'running';
    default:
      return 'cancelled';
  }
}
