import { h, patchList } from '/kit/dom.js';
import { describeVram, kindLabel } from '../format.js';
import { facts, timeAgo } from '../widgets.js';

/** Registration requests waiting for the operator. Hidden entirely when there are none. */
export function pendingSection() {
  return h(
    'section',
    { class: 'panel', id: 'pending', 'aria-labelledby': 'pending-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'pending-title', text: 'Pending approvals' }), h('span', { class: 'count muted' })),
    h('p', { class: 'empty muted', text: 'No machine is waiting for approval.' }),
    h('ul', { class: 'cards', 'aria-label': 'Registration requests' }),
  );
}

export function renderPending(section, requests, actions) {
  section.querySelector('.count').textContent = requests.length ? `${requests.length} waiting` : '';
  section.querySelector('.empty').hidden = requests.length > 0;
  section.classList.toggle('attention', requests.length > 0);
  patchList(section.querySelector('ul'), requests, {
    key: (r) => r.requestId,
    signature: (r) => JSON.stringify(r),
    render: (r) => requestCard(r, actions),
  });
}

function requestCard(request, actions) {
  const titleId = `request-${request.requestId}-name`;
  const name = request.label ? `${request.machineName} — ${request.label}` : request.machineName;
  return h(
    'li',
    { class: 'card request', 'aria-labelledby': titleId },
    h('div', { class: 'card-head' }, h('h3', { id: titleId, text: name })),
    facts([
      ['User', request.username || '—'],
      ['VRAM', describeVram(request.vramTotalGb, request.vramThresholdGb)],
      ['Kinds', request.taskKinds.length ? request.taskKinds.map(kindLabel).join(', ') : 'none'],
      ['Models', request.supportedModels.length ? request.supportedModels.join(', ') : null],
      ['From', h('code', { text: request.sourceIp })],
      ['Requested', timeAgo(request.requestedAt)],
      // The body's userAgent names the worker program (an original one says studio-worker/0.4.x).
      ['Agent', request.userAgent || (request.agentVersion ? `studio-worker ${request.agentVersion}` : null)],
      ['Install id', h('code', { text: request.installId })],
    ]),
    h(
      'div',
      { class: 'card-actions' },
      h('button', { type: 'button', class: 'primary', 'data-focus-key': `approve-${request.requestId}`, 'aria-label': `Approve ${name}`, onClick: () => actions.approve(request) }, 'Approve'),
      h('button', { type: 'button', class: 'danger secondary', 'data-focus-key': `reject-${request.requestId}`, 'aria-label': `Reject ${name}`, onClick: () => actions.reject(request) }, 'Reject'),
    ),
  );
}
