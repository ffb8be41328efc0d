import { h, patchList, patchRegion, setText } from '/kit/dom.js';
import { formatBytes, formatGb, kindLabel } from '../format.js';
import { badge, bytesBar, timeAgo } from '../widgets.js';

/**
 * The Models page: the daemon's catalogue (models met in studio offers, and models added on this
 * machine) with what is on disk, downloads in progress, failed downloads, and Download / Retry /
 * Delete. `ctx`: {store, downloadModel(id), deleteModel(model)}.
 */
export function createModelsView(ctx) {
  const summary = h('p', { class: 'muted summary' });
  const list = h('ul', { class: 'cards model-list', 'aria-label': 'Models in the catalogue' });
  const empty = h('p', { class: 'empty muted' });
  const section = h(
    'section',
    { class: 'page', id: 'page-models', 'aria-labelledby': 'models-title' },
    h('h1', { id: 'models-title', tabindex: '-1', text: 'Models' }),
    h(
      'section',
      { class: 'panel' },
      h('p', { class: 'hint', text: 'Models the studio offered jobs on, and models added on this machine. A model is ready when every file is on disk and verified; the studio only offers jobs on ready models or models its engine holds itself.' }),
      summary,
      empty,
      list,
    ),
  );

  function render() {
    const models = ctx.store.models;
    const ready = (models ?? []).filter((model) => model.ready).length;
    const onDisk = (models ?? []).reduce((sum, model) => sum + (model.bytesOnDisk ?? 0), 0);
    setText(summary, models ? `${models.length} models, ${ready} ready, ${formatBytes(onDisk)} on disk.` : '');
    empty.hidden = Boolean(models && models.length > 0);
    setText(empty, models ? 'The catalogue is empty: models appear here once the studio offers a job on one.' : 'Loading the models…');
    patchList(list, models ?? [], {
      key: (model) => model.id,
      // Download byte counts change often; they are patched in place (the buttons stay put).
      signature: (model) => JSON.stringify({ ...model, download: model.download ? { state: model.download.state, error: model.download.error } : null, lastSeenAt: undefined }),
      render: (model) => modelCard(model, ctx),
      update: (node, model) => {
        const slot = node.querySelector('.download-slot');
        if (!slot) return;
        const d = model.download;
        patchRegion(slot, JSON.stringify([d?.bytesDone ?? 0, d?.bytesTotal ?? null]), () => [
          bytesBar(d?.bytesDone ?? 0, d?.bytesTotal, `Download of ${model.id}`),
          h('span', { class: 'muted', text: d?.bytesTotal ? `${formatBytes(d.bytesDone)} of ${formatBytes(d.bytesTotal)}` : `${formatBytes(d?.bytesDone ?? 0)} so far` }),
        ]);
      },
    });
  }

  return { id: 'models', title: 'Models', section, render, heading: () => section.querySelector('#models-title') };
}

function stateOf(model) {
  if (model.download?.state === 'downloading') return { text: 'downloading', tone: 'running' };
  if (model.download?.state === 'failed') return { text: 'download failed', tone: 'failed' };
  if (model.ready) return { text: 'ready', tone: 'good' };
  return { text: 'not downloaded', tone: 'neutral' };
}

function modelCard(model, ctx) {
  const state = stateOf(model);
  const hasFiles = model.files.length > 0;
  const downloading = model.download?.state === 'downloading';
  const failed = model.download?.state === 'failed';
  const titleId = `model-${model.id.replace(/[^\w-]+/g, '_')}`;
  return h(
    'li',
    { class: 'card model-card', 'data-model-id': model.id, 'aria-labelledby': titleId },
    h(
      'div',
      { class: 'card-head' },
      h('h2', { id: titleId, class: 'card-title' }, model.displayName ?? model.id),
      h('span', { class: 'badges' }, badge(state.text, state.tone), badge(model.origin === 'local' ? 'added here' : 'from the studio', 'neutral')),
    ),
    model.displayName ? h('p', { class: 'muted model-id' }, h('code', { text: model.id })) : null,
    h(
      'dl',
      { class: 'facts' },
      fact('Kind', kindLabel(model.kind)),
      fact('Engine', model.engine),
      fact('GPU memory', model.vramGbEstimate ? `about ${formatGb(model.vramGbEstimate)}` : 'not stated'),
      fact('On disk', hasFiles ? formatBytes(model.bytesOnDisk ?? 0) : 'nothing to download: its engine holds it'),
      fact('Last offered', model.origin === 'studio' ? timeAgo(model.lastSeenAt) : null),
    ),
    downloading ? h('p', { class: 'download-slot progress' }) : null,
    failed ? h('p', { class: 'error', role: 'status' }, h('strong', { text: 'Download failed: ' }), model.download.error ?? 'no reason given') : null,
    hasFiles
      ? h(
          'details',
          { class: 'files' },
          h('summary', { text: `${model.files.length} file${model.files.length === 1 ? '' : 's'}` }),
          h(
            'ul',
            {},
            model.files.map((file) =>
              h('li', {}, h('code', { text: file.filename }), ` (${file.role}${file.approxBytes ? `, ${formatBytes(file.approxBytes)}` : ''}) from `, h('span', { class: 'url', text: file.url })),
            ),
          ),
        )
      : null,
    h(
      'div',
      { class: 'card-actions' },
      hasFiles && !model.ready && !downloading
        ? h('button', { type: 'button', class: 'primary', 'aria-label': `${failed ? 'Retry download of' : 'Download'} ${model.id}`, 'data-focus-key': `download-${model.id}`, onClick: () => ctx.downloadModel(model.id) }, failed ? 'Retry download' : 'Download')
        : null,
      h('button', { type: 'button', class: 'danger secondary', 'aria-label': `Delete ${model.id}`, 'data-focus-key': `delete-${model.id}`, onClick: () => ctx.deleteModel(model) }, 'Delete'),
    ),
  );
}

function fact(term, value) {
  if (value === null || value === undefined || value === '') return null;
  return h('div', {}, h('dt', { text: term }), h('dd', {}, value));
}
