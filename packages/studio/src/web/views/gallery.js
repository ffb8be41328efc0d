import { h, setChildren } from '/kit/dom.js';

/**
 * The results gallery: finished jobs newest first, filtered by model, game, asset name and date.
 * Results need the bearer token, so each is fetched and shown from a blob URL (revoked when the
 * grid is redrawn). Images show as images, audio and video get players, text results a snippet.
 */
export async function renderGallery(root, { api }) {
  const filters = Object.fromEntries(new URLSearchParams(sessionStorage.getItem('studio.galleryFilters') ?? ''));
  const models = (await api.json('GET', '/models')).models;
  const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id, text: label }), control);
  const model = h('select', { id: 'g-model' }, h('option', { value: '', text: 'any model' }), models.map((m) => h('option', { value: m.id, text: m.id, selected: filters.model === m.id })));
  const game = h('input', { id: 'g-game', value: filters.gameId ?? '', placeholder: 'gameId' });
  const asset = h('input', { id: 'g-asset', value: filters.asset ?? '', placeholder: 'part of the name' });
  const since = h('input', { id: 'g-since', type: 'date', value: filters.since ?? '' });
  const until = h('input', { id: 'g-until', type: 'date', value: filters.until ?? '' });
  const grid = h('ul', { class: 'gallery-grid', 'aria-label': 'Finished results' });
  const status = h('p', { class: 'muted', role: 'status' });
  const detail = h('section', { class: 'panel', 'aria-label': 'Job detail', hidden: true });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Older results');
  let urls = [];
  let nextBefore;

  async function load(append) {
    const query = { model: model.value, gameId: game.value.trim(), asset: asset.value.trim(), since: since.value, until: until.value ? nextDay(until.value) : '', before: append ? nextBefore : undefined };
    sessionStorage.setItem('studio.galleryFilters', new URLSearchParams(Object.entries({ model: model.value, gameId: query.gameId, asset: query.asset, since: since.value, until: until.value }).filter(([, v]) => v)).toString());
    const page = await api.json('GET', '/gallery', { query });
    if (!append) {
      for (const url of urls) URL.revokeObjectURL(url);
      urls = [];
      grid.replaceChildren();
    }
    nextBefore = page.nextBefore;
    more.hidden = nextBefore === undefined;
    status.textContent = page.jobs.length || append ? `${grid.children.length + page.jobs.length} results shown` : 'No finished results match these filters.';
    for (const job of page.jobs) grid.append(card(job));
  }

  function card(job) {
    const media = h('div', { class: 'media' }, h('span', { class: 'muted', text: 'loading…' }));
    void (async () => {
      const response = await api.send('GET', `/jobs/${encodeURIComponent(job.id)}/result`);
      const mime = job.result?.type === 'file' ? job.result.mime : 'application/json';
      if (!mime.startsWith('image/') && !mime.startsWith('audio/') && !mime.startsWith('video/')) {
        setChildren(media, h('pre', { class: 'snippet', text: (await response.text()).slice(0, 300) }));
        return;
      }
      const url = URL.createObjectURL(await response.blob());
      urls.push(url);
      const label = `${job.assetName || job.prompt} (${job.model})`;
      if (mime.startsWith('image/')) setChildren(media, h('img', { src: url, alt: label, loading: 'lazy' }));
      else if (mime.startsWith('audio/')) setChildren(media, h('audio', { src: url, controls: true, 'aria-label': label }));
      else setChildren(media, h('video', { src: url, controls: true, muted: true, loop: true, 'aria-label': label }));
    })().catch((error) => setChildren(media, h('span', { class: 'error', text: error.message })));
    const name = [job.gameId, job.assetName].filter(Boolean).join('/') || job.prompt;
    return h(
      'li',
      { 'data-job': job.id },
      media,
      h('button', { type: 'button', class: 'caption', onClick: () => showDetail(job) }, name),
    );
  }

  function showDetail(job) {
    const rows = [
      ['Job', job.id],
      ['Model', `${job.model} (${job.engine})`],
      ['Game / asset', [job.gameId, job.assetName].filter(Boolean).join(' / ') || '—'],
      ['Prompt', job.prompt],
      ['Finished', job.completedAt ?? '—'],
      ['Worker', job.lastWorkerId ?? '—'],
      ['Result', job.result?.type === 'file' ? `${job.result.mime}, ${job.result.bytes} bytes` : 'JSON'],
    ];
    setChildren(detail, h('h2', { text: 'Job detail' }), h('table', {}, rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { text: v })))));
    detail.hidden = false;
    detail.scrollIntoView({ block: 'nearest' });
  }

  const form = h(
    'form',
    { class: 'gallery-filters', onSubmit: (e) => (e.preventDefault(), void load(false)) },
    field('g-model', 'Model', model),
    field('g-game', 'Game', game),
    field('g-asset', 'Asset name', asset),
    field('g-since', 'Finished from', since),
    field('g-until', 'to', until),
    h('button', { type: 'submit', class: 'primary' }, 'Show'),
  );
  more.addEventListener('click', () => void load(true));
  setChildren(root, h('h1', { text: 'Results gallery' }), form, status, grid, more, detail);
  await load(false);
}

function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
}
