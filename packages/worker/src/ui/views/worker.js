import { h, patchRegion } from '/kit/dom.js';
import { formatBytes, formatDuration, formatGb, kindLabel } from '../format.js';
import { registrationText, studioStateOf } from '../state.js';
import { badge, facts, timeAgo } from '../widgets.js';

/**
 * The Worker page: registration (request id, rejection reason, Reset), the studio connection and
 * last heartbeat, this machine (GPU memory, models folder, engines and why one is unavailable), and
 * the daemon's version with Check for updates.
 * `ctx`: {store, resetRegistration(), checkForUpdate(), stopDaemon()}.
 */
export function createWorkerView(ctx) {
  const regions = {
    registration: h('div'),
    connection: h('div'),
    machine: h('div'),
    engines: h('div'),
    daemon: h('div'),
    update: h('div', { class: 'update-result', role: 'status' }),
  };
  const panel = (id, title, ...children) => h('section', { class: 'panel', id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title`, text: title }), ...children);
  const section = h(
    'section',
    { class: 'page', id: 'page-worker', 'aria-labelledby': 'worker-title' },
    h('h1', { id: 'worker-title', tabindex: '-1', text: 'Worker' }),
    h(
      'div',
      { class: 'grid' },
      panel('registration', 'Registration', regions.registration),
      panel('connection', 'Studio connection', regions.connection),
      panel('machine', 'This machine', regions.machine, h('h3', { text: 'Engines' }), regions.engines),
      panel(
        'daemon',
        'Daemon and updates',
        regions.daemon,
        h('div', { class: 'card-actions' }, h('button', { type: 'button', class: 'secondary', id: 'check-updates', onClick: () => ctx.checkForUpdate() }, 'Check for updates')),
        regions.update,
        h('h3', { text: 'Stop' }),
        h('p', { class: 'hint', text: 'Stops taking jobs and ends the daemon (a running job gets its grace period). This page then says the daemon is unreachable until it runs again.' }),
        h('div', { class: 'card-actions' }, h('button', { type: 'button', class: 'danger secondary', id: 'stop-daemon', onClick: () => ctx.stopDaemon() }, 'Stop the daemon')),
      ),
    ),
  );

  function render() {
    const { status, health, update } = ctx.store;
    if (!status) {
      patchRegion(regions.registration, 'loading', () => h('p', { class: 'muted', text: 'Loading…' }));
      return;
    }
    const reg = status.registration ?? {};
    patchRegion(regions.registration, JSON.stringify([reg, status.workerId ?? null, status.registered]), () => [
      h('p', { class: 'status-line' }, badge(reg.state ?? 'unknown', registrationTone(reg.state)), h('span', { text: registrationText(reg, status.workerId) })),
      facts([
        ['Worker id', status.workerId ? h('code', { text: status.workerId }) : null],
        ['Request id', reg.state === 'pending' ? h('code', { class: 'request-id', text: reg.requestId }) : null],
        ['Waiting since', reg.state === 'pending' && reg.since ? timeAgo(reg.since) : null],
      ]),
      reg.state === 'pending' ? h('p', { class: 'hint', text: 'Ask the studio operator to approve this request (it lists this machine by name and request id). The worker connects by itself once approved.' }) : null,
      reg.state === 'rejected'
        ? [
            h('p', { class: 'error rejection-reason' }, h('strong', { text: 'Reason: ' }), reg.reason || '(no reason given)'),
            h('p', { class: 'hint', text: 'Reset forgets this registration and sends a new request at once; the operator has to approve it.' }),
            h('div', { class: 'card-actions' }, h('button', { type: 'button', class: 'primary', 'data-focus-key': 'reset-registration', onClick: () => ctx.resetRegistration() }, 'Reset registration')),
          ]
        : null,
    ]);

    const studio = studioStateOf(status);
    const cooldown = status.cooldown;
    patchRegion(regions.connection, JSON.stringify([status.session, status.apiBaseUrl, status.lastHeartbeat ?? null, status.outboxEntries, cooldown ?? null, studio]), () => [
      h('p', { class: 'status-line' }, badge(studio.text, studio.tone)),
      facts([
        ['Studio', h('code', { text: status.apiBaseUrl })],
        ['Last heartbeat', status.lastHeartbeat ? timeAgo(status.lastHeartbeat) : 'none on this connection yet'],
        ['Results to deliver', status.outboxEntries > 0 ? `${status.outboxEntries} waiting for the studio's acknowledgement` : 'none'],
        ['Failed jobs in a row', cooldown?.consecutiveFailures ? String(cooldown.consecutiveFailures) : null],
        ['Pausing until', cooldown?.cooldownUntil ? timeAgo(cooldown.cooldownUntil) : null],
        ['Last failure', cooldown?.lastFailure ?? null],
      ]),
    ]);

    const presence = status.presence;
    const presenceText = presence
      ? presence.presence === 'unknown'
        ? `cannot tell (${presence.problem ?? 'no probe answered'}): taking no jobs`
        : `${presence.presence === 'idle' ? 'away' : 'at the computer'}, idle ${formatDuration(presence.idleSecs ?? 0)} (${presence.source})`
      : null;
    const busy = status.gpuBusy?.length ? `${status.gpuBusy.map((p) => p.name.split(/[\\/]/).pop()).join(', ')} uses the GPU: taking no new jobs` : null;
    patchRegion(regions.machine, JSON.stringify([status.machine?.name, status.machine?.platform, status.vramTotalGb, status.gpus ?? null, presenceText, busy, status.vramThresholdGb, status.modelsRoot, health?.modelsRootFreeBytes ?? null]), () =>
      facts([
        ['Machine', status.machine?.name ?? null],
        ['System', status.machine?.platform ?? null],
        ['GPU memory', status.vramTotalGb > 0 ? formatGb(status.vramTotalGb) : 'not detected (no GPU answered: nvidia-smi, AMD sysfs, Apple, Win32_VideoController)'],
        ...(status.gpus ?? []).map((gpu) => [gpu.name, `${formatGb(gpu.vramGb)} (${gpu.source})`]),
        ['User (only when idle)', presenceText],
        ['Other GPU programs', busy],
        ['Offered to the studio', offeredText(status)],
        ['Models folder', h('code', { text: status.modelsRoot })],
        ['Free space there', Number.isFinite(health?.modelsRootFreeBytes) ? formatBytes(health.modelsRootFreeBytes) : null],
      ]),
    );

    patchRegion(regions.engines, JSON.stringify(status.engines ?? []), () =>
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'engines' },
          h('caption', { class: 'visually-hidden', text: 'Engines on this machine' }),
          h('thead', {}, h('tr', {}, ['Engine', 'Kinds', 'State', 'Details'].map((text) => h('th', { scope: 'col', text })))),
          h(
            'tbody',
            {},
            (status.engines ?? []).map((engine) =>
              h(
                'tr',
                { 'data-engine': engine.engine },
                h('th', { scope: 'row' }, h('code', { text: engine.engine })),
                h('td', { text: (engine.kinds ?? []).map(kindLabel).join(', ') }),
                h('td', {}, engine.available ? badge('available', 'good') : badge('unavailable', 'failed')),
                h('td', { class: 'wrap', text: engine.available ? (engine.detail ?? '') : [engine.reason, engine.detail].filter(Boolean).join(' — ') }),
              ),
            ),
          ),
        ),
      ),
    );

    patchRegion(regions.daemon, JSON.stringify([status.version, status.nodeVersion ?? null, status.pid, status.configPath, status.localApiUrl]), () =>
      facts([
        ['Version', h('code', { text: status.version })],
        ['Node.js', status.nodeVersion ?? null],
        ['Local API', h('code', { text: status.localApiUrl || location.origin })],
        ['Config file', h('code', { text: status.configPath })],
        ['Process', `pid ${status.pid}`],
        ['Running for', h('span', { class: 'uptime' })],
      ]),
    );
    const uptime = regions.daemon.querySelector('.uptime');
    if (uptime) uptime.textContent = formatDuration(status.uptimeSecs ?? 0);

    patchRegion(regions.update, JSON.stringify(update), () => updateView(update));
  }

  return { id: 'worker', title: 'Worker', section, render, heading: () => section.querySelector('#worker-title') };
}

function registrationTone(state) {
  switch (state) {
    case 'approved':
      return 'good';
    case 'pending':
    case 'pristine':
      return 'waiting';
    case 'rejected':
      return 'failed';
    default:
      return 'neutral';
  }
}

/** `update`: {state: 'idle'|'checking'|'done'|'error', result?, message?}. */
function updateView(update) {
  switch (update?.state) {
    case 'checking':
      return h('p', { class: 'muted', text: 'Checking for updates…' });
    case 'error':
      return h('p', { class: 'error' }, h('strong', { text: 'Could not check for updates: ' }), update.message);
    case 'done': {
      const r = update.result ?? {};
      if (r.error) return h('p', { class: 'error' }, h('strong', { text: 'Could not check for updates: ' }), r.error);
      if (r.gitCheckout) return h('p', {}, h('strong', { text: 'A git checkout: ' }), `update it with git (git pull, then npm install) in ${r.gitCheckout}.`);
      if (r.available) {
        return h('p', {}, h('strong', { text: `Version ${r.latest} is available` }), ` (this is ${r.current}${r.prerelease ? '; the new one is a prerelease' : ''}). With auto-update on (Config), the worker installs it by itself.`);
      }
      return h('p', { text: `Up to date: ${r.current}${r.latest && r.latest !== r.current ? ` (newest published: ${r.latest})` : ''}.` });
    }
    default:
      return [];
  }
}

/**
 * The threshold as it really applies: config.toml's value is clamped to the detected GPU memory
 * only when some was detected (on first run); without a detection it is taken as set.
 */
function offeredText(status) {
  const offered = formatGb(status.vramThresholdGb);
  if (!(status.vramTotalGb > 0)) return `${offered}, as set: no GPU memory was detected, so nothing limits it (change it under Config)`;
  if (status.vramThresholdGb > status.vramTotalGb) return `${offered}, more than the ${formatGb(status.vramTotalGb)} detected (change it under Config)`;
  return `${offered} (change it under Config)`;
}
