import { h, setChildren } from '/kit/dom.js';

/** Disk use of results and the retention setting. */
export async function renderStorage(root, { api }) {
  const s = await api.json('GET', '/storage');
  const mib = (b) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  setChildren(
    root,
    h('h1', { text: 'Storage' }),
    h('table', {}, [
      ['Result files', `${s.resultFiles} (${mib(s.resultBytes)})`],
      ['Text results', String(s.jsonResults)],
      ['Expired jobs (results deleted)', String(s.expiredJobs)],
      ['Retention', s.retentionDays === null ? 'results are kept forever (start the studio with STUDIO_RETENTION_DAYS=N to delete older ones)' : `results older than ${s.retentionDays} days are deleted hourly`],
    ].map(([k, v]) => h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { text: v })))),
    h('p', { class: 'hint', text: 'Run the retention now with "studio gc"; back up with "studio backup --out FILE".' }),
  );
}

/** Every route from /graphics/api/openapi.json, with who may call it. */
export async function renderApiReference(root, { api }) {
  const doc = await api.json('GET', '/openapi.json');
  const rows = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => h('tr', {}, h('td', {}, h('code', { text: `${method.toUpperCase()} ${doc.servers[0].url}${path}` })), h('td', { text: op.summary }), h('td', { text: op.description }))),
  );
  setChildren(
    root,
    h('h1', { text: 'API reference' }),
    h('p', {}, 'OpenAPI 3.1: ', h('a', { href: `${doc.servers[0].url}/openapi.json`, text: 'openapi.json' }), ` (version ${doc.info.version}). Load it into any OpenAPI viewer or client generator.`),
    h('table', {}, h('thead', {}, h('tr', {}, ['Route', 'What', 'Who'].map((c) => h('th', { scope: 'col', text: c })))), h('tbody', {}, rows)),
  );
}
