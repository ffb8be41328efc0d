import { h, setChildren } from '/kit/dom.js';

const when = (iso) => (iso ? new Date(iso).toLocaleString() : 'never');

/** API tokens: create (the token is shown once, here), list with last use, revoke. */
export async function renderTokens(root, { api, notify }) {
  const { tokens } = await api.json('GET', '/tokens');
  const name = h('input', { id: 't-name', required: true, placeholder: 'what it is for' });
  const scope = h('select', { id: 't-scope' }, ['submit', 'read', 'admin'].map((s) => h('option', { value: s, text: s })));
  const shown = h('div', { role: 'status' });
  const form = h(
    'form',
    {
      class: 'gallery-filters',
      async onSubmit(event) {
        event.preventDefault();
        if (!name.value.trim()) return notify('Give the token a name.');
        const made = await api.json('POST', '/tokens', { json: { name: name.value.trim(), scope: scope.value } });
        await renderTokens(root, { api, notify });
        root.querySelector('[role=status]').replaceChildren(h('p', { text: `Token ${made.id} (${made.scope}). Copy it now: it is shown only this once.` }), h('p', { class: 'secret', text: made.token }));
      },
    },
    h('div', { class: 'field' }, h('label', { for: 't-name', text: 'Name' }), name),
    h('div', { class: 'field' }, h('label', { for: 't-scope', text: 'Scope' }), scope),
    h('button', { type: 'submit', class: 'primary' }, 'Create token'),
  );
  const rows = tokens.map((t) =>
    h(
      'tr',
      {},
      h('td', { text: t.name }),
      h('td', { text: t.scope }),
      h('td', { text: when(t.createdAt) }),
      h('td', { text: when(t.lastUsedAt) }),
      h('td', {}, t.revokedAt ? `revoked ${when(t.revokedAt)}` : h('button', { type: 'button', class: 'danger secondary small', onClick: async () => (await api.json('POST', `/tokens/${encodeURIComponent(t.id)}/revoke`), renderTokens(root, { api, notify })) }, `Revoke ${t.name}`)),
    ),
  );
  setChildren(
    root,
    h('h1', { text: 'API tokens' }),
    h('p', { class: 'hint', text: 'admin: everything. submit: create jobs, read and cancel its own jobs, fetch their results. read: look at everything, change nothing.' }),
    form,
    shown,
    h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Scope', 'Created', 'Last used', ''].map((c) => h('th', { scope: 'col', text: c })))), h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 5, text: 'No API tokens yet.' })))),
  );
}

/** Webhook endpoints with delivery counts, and each endpoint's recent deliveries and failures. */
export async function renderWebhooks(root, { api }) {
  const { webhooks } = await api.json('GET', '/webhooks');
  const sections = await Promise.all(
    webhooks.map(async (w) => {
      const deliveries = await api.json('GET', `/webhooks/${encodeURIComponent(w.id)}/deliveries`, { query: { limit: 50 } });
      return h(
        'section',
        { class: 'panel', 'aria-label': `Webhook ${w.url}` },
        h('h2', { text: w.url }),
        h('p', { text: `${w.events.join(', ')} · ${w.delivered} delivered · ${w.pending} pending · ${w.failed} failed` }),
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, ['Event', 'Job', 'Status', 'Tries', 'Last error', 'Next try'].map((c) => h('th', { scope: 'col', text: c })))),
          h('tbody', {}, deliveries.map((d) => h('tr', {}, h('td', { text: `${d.eventId} ${d.type}` }), h('td', { text: d.jobId }), h('td', { text: d.status }), h('td', { text: d.attempts }), h('td', { text: d.lastError ?? '' }), h('td', { text: d.nextAt ? when(d.nextAt) : '' })))),
        ),
      );
    }),
  );
  setChildren(root, h('h1', { text: 'Webhooks' }), h('p', { class: 'hint', text: 'Add endpoints with POST /graphics/api/webhooks (see docs/operations/client.md); deliveries are signed and retried for a day.' }), sections.length ? sections : h('p', { text: 'No webhooks.' }));
}
