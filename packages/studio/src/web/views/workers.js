import { h, patchList, patchRegion } from '/kit/dom.js';
import { describeModelEntry, describeVram, kindLabel } from '../format.js';
import { badge, facts, timeAgo } from '../widgets.js';

/** Online first, then by name. */
function byPresence(a, b) {
  if (a.state !== b.state) return a.state === 'online' ? -1 : 1;
  return (a.label || a.id).localeCompare(b.label || b.id);
}

/**
 * The fleet: one card per worker. `actions.deleteWorker(worker)` and `actions.selectJob(jobId)`
 * come from the app.
 */
export function renderWorkers(section, workers, actions) {
  const list = section.querySelector('ul');
  const empty = section.querySelector('.empty');
  const count = section.querySelector('.count');
  const online = workers.filter((w) => w.state === 'online').length;
  count.textContent = workers.length ? `${online} of ${workers.length} online` : '';
  empty.hidden = workers.length > 0;
  patchList(list, [...workers].sort(byPresence), {
    key: (w) => w.id,
    // Every heartbeat changes lastHeartbeatAt; that one field is patched in place.
    signature: (w) => JSON.stringify({ ...w, lastHeartbeatAt: undefined }),
    render: (w) => workerCard(w, actions),
    update: (node, w) => {
      const heartbeat = node.querySelector('.heartbeat');
      if (heartbeat) patchRegion(heartbeat, w.lastHeartbeatAt ?? '', () => timeAgo(w.lastHeartbeatAt));
    },
  });
}

export function workersSection() {
  return h(
    'section',
    { class: 'panel', id: 'workers', 'aria-labelledby': 'workers-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'workers-title', text: 'Workers' }), h('span', { class: 'count muted' })),
    h('p', { class: 'empty muted', text: 'No workers yet. Start studio-worker on a GPU machine; its registration request shows up under Pending approvals.' }),
    h('ul', { class: 'cards', 'aria-label': 'Workers' }),
  );
}

function workerCard(worker, actions) {
  const caps = worker.capabilities;
  const titleId = `worker-${worker.id}-name`;
  const cooling = worker.coolingDownUntil && Date.parse(worker.coolingDownUntil) > Date.now();
  // Approved but never connected: it picks up its token at its next registration poll (within a
  // second or two while it waits), then connects.
  const waiting = worker.state === 'offline' && !worker.lastHeartbeatAt && !worker.connectedAt;
  return h(
    'li',
    { class: `card worker ${worker.state}`, 'aria-labelledby': titleId },
    h(
      'div',
      { class: 'card-head' },
      h('h3', { id: titleId }, worker.label || worker.id),
      h(
        'div',
        { class: 'badges' },
        waiting ? badge('approved, waiting for it to connect', 'waiting') : badge(worker.state),
        worker.paused ? badge('paused') : null,
        cooling ? badge('cooling down', 'cooling') : null,
      ),
    ),
    facts([
      ['Machine', [worker.machineName || '—', caps?.username ? ` (${caps.username})` : '']],
      ['Worker id', h('code', { text: worker.id })],
      ['Last heartbeat', waiting ? null : h('span', { class: 'heartbeat' })],
      ['Current jobs', currentJobs(worker, actions)],
      ['VRAM', caps ? describeVram(caps.vramTotalGb, caps.vramThresholdGb) : null],
      ['Serves', caps ? servedKinds(caps) : h('span', { class: 'muted', text: 'not reported yet (never connected)' })],
      ['Unavailable', caps?.unavailableEngines?.length ? unavailable(caps.unavailableEngines) : null],
      ['Failures in a row', worker.consecutiveFailures > 0 ? String(worker.consecutiveFailures) : null],
      ['Cooling down until', cooling ? timeAgo(worker.coolingDownUntil) : null],
      ['Agent', worker.userAgent || (caps?.agentVersion ? `studio-worker ${caps.agentVersion}` : null)],
    ]),
    h(
      'div',
      { class: 'card-actions' },
      h(
        'button',
        {
          type: 'button',
          class: 'danger secondary',
          'data-focus-key': `delete-${worker.id}`,
          'aria-label': `Delete worker ${worker.label || worker.id}`,
          onClick: () => actions.deleteWorker(worker),
        },
        'Delete',
      ),
    ),
  );
}

function currentJobs(worker, actions) {
  if (worker.currentJobIds.length === 0) return h('span', { class: 'muted', text: 'idle' });
  return h(
    'ul',
    { class: 'inline-list' },
    worker.currentJobIds.map((jobId) =>
      h('li', {}, h('button', { type: 'button', class: 'link', 'data-focus-key': `job-${worker.id}-${jobId}`, onClick: () => actions.selectJob(jobId) }, jobId)),
    ),
  );
}

function servedKinds(caps) {
  const perKind = caps.supportedModelsPerKind ?? {};
  const kinds = caps.taskKinds?.length ? caps.taskKinds : Object.keys(perKind);
  if (kinds.length === 0) return h('span', { class: 'muted', text: 'nothing' });
  return h(
    'ul',
    { class: 'served' },
    kinds.map((kind) =>
      h(
        'li',
        {},
        h('span', { class: 'kind', text: kindLabel(kind) }),
        ' ',
        (perKind[kind] ?? []).length ? (perKind[kind] ?? []).map((entry) => h('span', { class: 'chip', text: describeModelEntry(entry) })) : h('span', { class: 'muted', text: 'no engine' }),
      ),
    ),
  );
}

function unavailable(engines) {
  return h(
    'ul',
    { class: 'unavailable' },
    engines.map((e) => h('li', {}, h('strong', { text: e.engine }), `: ${e.reason}`)),
  );
}
