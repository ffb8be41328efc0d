import { ApiError, createApi } from './api.js';
import { askConfirm } from '/kit/dialog.js';
import { h, setChildren, setText } from '/kit/dom.js';
import { createAnnouncer, createNotice } from '/kit/messages.js';
import { tokenShell } from '/kit/token.js';
import { percent } from './format.js';
import { createPoller } from './poller.js';
import { activityOf, studioStateOf } from './state.js';
import { refreshRelativeTimes } from './widgets.js';
import { createConfigView } from './views/config.js';
import { createJobsView } from './views/jobs.js';
import { createLogsView } from './views/logs.js';
import { createModelsView } from './views/models.js';
import { renderTokenPage } from './views/token.js';
import { createWorkerView } from './views/worker.js';

const TOKEN_KEY = 'studio-worker.localApiToken';
const POLL_MS = 1000;
/** The daemon's log ring holds 1 000 lines; the page keeps as many. */
const MAX_LOG_LINES = 1000;

const main = document.getElementById('main');
const headerState = document.getElementById('header-state');
const nav = document.getElementById('pages');
const unreachableBanner = document.getElementById('unreachable');
const { show: showNotice, hide: hideNotice } = createNotice(document.getElementById('notice'));
const statusbar = document.getElementById('statusbar');
const announce = createAnnouncer(document.getElementById('announcer'));

// ------------------------------------------------------------------ the token

function showTokenPage({ error, submit }) {
  headerState.hidden = true;
  nav.hidden = true;
  statusbar.hidden = true;
  unreachableBanner.hidden = true;
  hideNotice();
  document.title = 'studio-worker';
  renderTokenPage(main, { error, onSubmit: submit });
}

// ------------------------------------------------------------------ one session with a token

function createSession(token, shell) {
  let stopped = false;
  let renderQueued = false;
  /** Subjects (pause, a model, the registration) with an action in flight: a double click acts once. */
  const busy = new Set();
  const store = {
    status: null,
    jobs: null,
    models: null,
    logs: { entries: [], seq: 0, loaded: false },
    logFilter: { level: 'info', search: '', follow: true },
    config: null,
    configError: null,
    selectedJobId: null,
    jobDetail: null,
    historyFilter: { source: 'all', status: 'all' },
    health: null,
    update: { state: 'idle' },
    /** `connecting` until the first answer, then `ok` or `unreachable`. */
    link: 'connecting',
    linkError: '',
    /** jobId → {state: 'loading'|'ready'|'failed', url?} */
    thumbs: new Map(),
  };
  /** What was last announced, so only changes are spoken. */
  const said = { activity: '', studio: '', link: '' };

  const api = createApi({
    token: () => token,
    onUnauthorized(error) {
      if (stopped) return;
      shell.refused(error.message);
    },
  });

  const ctx = {
    store,
    api,
    announce,
    selectJob,
    closeDetail() {
      store.selectedJobId = null;
      store.jobDetail = null;
      render();
      document.getElementById('jobs-title')?.focus();
    },
    setHistoryFilter(name, value) {
      store.historyFilter = { ...store.historyFilter, [name]: value };
      render();
    },
    setLogFilter(patch) {
      store.logFilter = { ...store.logFilter, ...patch };
      render();
    },
    thumbnailUrl: (jobId) => (store.thumbs.get(jobId)?.state === 'ready' ? store.thumbs.get(jobId).url : undefined),
    downloadModel,
    deleteModel,
    resetRegistration,
    checkForUpdate,
    stopDaemon,
    loadConfig,
    saveConfig: (patch) => api.saveConfig(patch),
  };

  const views = [createJobsView(ctx), createModelsView(ctx), createWorkerView(ctx), createLogsView(ctx), createConfigView(ctx)];
  let current = views[0];

  // ---------------------------------------------------------------- page frame

  setChildren(
    nav,
    h(
      'ul',
      {},
      views.map((view, index) =>
        h(
          'li',
          {},
          h(
            'a',
            { href: `#${view.id}`, 'data-page': view.id, 'aria-keyshortcuts': `Control+${index + 1}`, title: `${view.title} (Ctrl+${index + 1})` },
            view.title,
            h('kbd', { class: 'shortcut', 'aria-hidden': 'true', text: `Ctrl+${index + 1}` }),
          ),
        ),
      ),
    ),
  );
  setChildren(main, views.map((view) => view.section));
  headerState.hidden = false;
  nav.hidden = false;
  statusbar.hidden = false;
  const pauseButton = document.getElementById('pause-button');
  pauseButton.onclick = togglePause;

  function pageFromHash() {
    const id = location.hash.slice(1);
    return views.find((view) => view.id === id) ?? views[0];
  }

  function showPage(view, { focus = true } = {}) {
    current = view;
    for (const other of views) other.section.hidden = other !== view;
    for (const link of nav.querySelectorAll('a')) {
      if (link.dataset.page === view.id) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    document.title = `${view.title} · studio-worker`;
    view.onShow?.();
    render();
    poller.now();
    if (focus) view.heading()?.focus();
  }

  function onHashChange() {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) return;
    showPage(pageFromHash());
  }

  /** Ctrl+1…5 switch pages (as in the original's window); links and Tab work as well. */
  function onKeyDown(event) {
    if (!event.ctrlKey || event.altKey || event.metaKey || event.shiftKey) return;
    const index = Number(event.key) - 1;
    if (!Number.isInteger(index) || index < 0 || index >= views.length) return;
    event.preventDefault();
    const view = views[index];
    if (location.hash === `#${view.id}`) showPage(view);
    else location.hash = view.id;
  }

  window.addEventListener('hashchange', onHashChange);
  document.addEventListener('keydown', onKeyDown);

  // ---------------------------------------------------------------- polling

  const poller = createPoller(tick, POLL_MS);

  async function tick() {
    const page = current.id;
    const selected = store.selectedJobId;
    const [status, jobs, extra] = await Promise.allSettled([
      api.status(),
      api.jobs(),
      page === 'models'
        ? api.models()
        : page === 'logs'
          ? api.logs(store.logs.seq)
          : page === 'worker'
            ? api.health()
            : page === 'jobs' && selected
              ? api.job(selected)
              : Promise.resolve(undefined),
    ]);
    if (stopped) return;
    const failures = [status, jobs].filter((result) => result.status === 'rejected').map((result) => result.reason);
    if (failures.some((error) => error instanceof ApiError && error.status === 401)) return;
    const unreachable = failures.find((error) => error instanceof ApiError && error.unreachable);
    if (unreachable) {
      setLink('unreachable', unreachable.detail ?? unreachable.message);
      render();
      return;
    }
    if (status.status === 'fulfilled') acceptStatus(status.value);
    if (jobs.status === 'fulfilled') acceptJobs(jobs.value);
    if (failures.length > 0) showNotice(`The daemon answered with an error: ${failures[0].message}`, 'poll');
    else hideNotice('poll');
    setLink('ok');
    if (extra.status === 'fulfilled' && extra.value !== undefined) {
      if (page === 'models') store.models = extra.value.models;
      else if (page === 'logs') acceptLogs(extra.value);
      else if (page === 'worker') store.health = extra.value;
      else if (page === 'jobs' && selected === store.selectedJobId) store.jobDetail = extra.value;
    } else if (extra.status === 'rejected' && page === 'jobs' && extra.reason?.code === 'unknown_job') {
      store.jobDetail = null;
    }
    render();
  }

  function acceptStatus(status) {
    // Another daemon process (a restart): its log is numbered from 1 again.
    if (store.status && store.status.pid !== status.pid) store.logs = { entries: [], seq: 0, loaded: false };
    store.status = status;
  }

  function acceptJobs(jobs) {
    store.jobs = jobs;
    const listed = new Set();
    for (const job of [...jobs.running, ...jobs.recent]) {
      listed.add(job.jobId);
      if (job.hasThumbnail && !store.thumbs.has(job.jobId)) void loadThumbnail(job.jobId);
    }
    for (const [jobId, thumb] of store.thumbs) {
      if (listed.has(jobId)) continue;
      if (thumb.url) URL.revokeObjectURL(thumb.url);
      store.thumbs.delete(jobId);
    }
  }

  function acceptLogs(answer) {
    const logs = store.logs;
    const entries = answer.entries ?? [];
    // Lines numbered at or below what we have: the daemon restarted and sent its whole ring.
    if (entries.length > 0 && entries[0].seq <= logs.seq) logs.entries = entries.slice();
    else logs.entries.push(...entries);
    if (logs.entries.length > MAX_LOG_LINES) logs.entries.splice(0, logs.entries.length - MAX_LOG_LINES);
    logs.seq = answer.seq ?? logs.seq;
    logs.loaded = true;
  }

  /** The bearer header rules out a plain <img src>: fetch the PNG and show it from a blob URL. */
  async function loadThumbnail(jobId) {
    store.thumbs.set(jobId, { state: 'loading' });
    try {
      const blob = await api.thumbnail(jobId);
      const url = URL.createObjectURL(blob);
      if (stopped || !store.thumbs.has(jobId)) {
        URL.revokeObjectURL(url);
        return;
      }
      store.thumbs.set(jobId, { state: 'ready', url });
    } catch {
      if (store.thumbs.has(jobId)) store.thumbs.set(jobId, { state: 'failed' });
    }
    render();
  }

  function setLink(state, error = '') {
    const was = store.link;
    store.link = state;
    store.linkError = error;
    if (state === 'unreachable' && was !== 'unreachable') announce('The daemon is not answering.');
    if (state === 'ok' && was === 'unreachable') {
      announce('The daemon is answering again.');
      lastAction('Reconnected to the daemon.');
      if (current.id === 'config') loadConfig();
    }
  }

  // ---------------------------------------------------------------- actions

  function selectJob(jobId) {
    store.selectedJobId = jobId;
    if (store.jobDetail?.jobId !== jobId) store.jobDetail = null;
    render();
    poller.now();
    if (window.matchMedia('(max-width: 899px)').matches) {
      // One column: the detail is below the lists, so take the reader there.
      requestAnimationFrame(() => {
        document.getElementById('job-detail')?.scrollIntoView({ block: 'start' });
        document.getElementById('job-detail-title')?.focus({ preventScroll: true });
      });
    }
  }

  async function togglePause() {
    if (!store.status) return;
    const pause = !store.status.paused;
    await run('pause', async () => {
      const answer = pause ? await api.pause() : await api.resume();
      store.status = { ...store.status, paused: answer.paused };
      lastAction(answer.paused ? 'Paused: no new jobs are taken (a running job finishes).' : 'Resumed: taking jobs again.');
      render();
      poller.now();
    });
  }

  async function downloadModel(modelId) {
    await run(`model:${modelId}`, async () => {
      const model = await api.downloadModel(modelId);
      replaceModel(model);
      lastAction(`Downloading ${modelId}.`);
      render();
      poller.now();
    });
  }

  async function deleteModel(model) {
    const confirmed = await askConfirm({
      title: `Delete ${model.displayName ?? model.id}?`,
      message:
        model.files.length > 0
          ? 'Its files are removed from this computer and it leaves the catalogue. The studio adds it back when it offers a job on it; the files are then downloaded again.'
          : 'It leaves the catalogue. The studio adds it back when it offers a job on it.',
      confirmLabel: 'Delete model',
      danger: true,
    });
    if (!confirmed) return;
    await run(`model:${model.id}`, async () => {
      await api.deleteModel(model.id);
      store.models = (store.models ?? []).filter((m) => m.id !== model.id);
      lastAction(`Deleted ${model.id}.`);
      render();
      poller.now();
    });
  }

  function replaceModel(model) {
    if (!store.models) return;
    store.models = store.models.map((m) => (m.id === model.id ? model : m));
  }

  async function resetRegistration() {
    const confirmed = await askConfirm({
      title: 'Reset the registration?',
      message: 'This worker forgets the rejected request and sends a new one to the studio at once. The operator has to approve it.',
      confirmLabel: 'Reset and ask again',
    });
    if (!confirmed) return;
    await run('registration', async () => {
      const answer = await api.resetRegistration();
      if (store.status) store.status = { ...store.status, registration: answer.registration };
      lastAction('Registration reset: a new request was sent to the studio.');
      render();
      poller.now();
    });
  }

  async function checkForUpdate() {
    if (store.update.state === 'checking') return;
    store.update = { state: 'checking' };
    render();
    try {
      store.update = { state: 'done', result: await api.checkForUpdate() };
    } catch (error) {
      if (stopped || (error instanceof ApiError && error.status === 401)) return;
      store.update = { state: 'error', message: error.message };
    }
    render();
  }

  async function stopDaemon() {
    const confirmed = await askConfirm({
      title: 'Stop the daemon?',
      message: 'The worker stops taking jobs and the daemon exits (a running job gets its grace period). Start it again with studio-worker run or studio-worker ui.',
      confirmLabel: 'Stop the daemon',
      danger: true,
    });
    if (!confirmed) return;
    await run('shutdown', async () => {
      await api.shutdown();
      lastAction('The daemon is stopping.');
      poller.now();
    });
  }

  async function loadConfig() {
    try {
      store.config = await api.config();
      store.configError = null;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      store.configError = `The settings could not be loaded: ${error.message}`;
    }
    render();
  }

  /** Run an action once at a time per subject; its failure is shown (a 401 shows the token page). */
  async function run(subject, action) {
    if (busy.has(subject)) return;
    busy.add(subject);
    try {
      await action();
    } catch (error) {
      if (stopped || (error instanceof ApiError && error.status === 401)) return;
      showNotice(error.message);
    } finally {
      busy.delete(subject);
    }
  }

  function lastAction(text) {
    setText(document.getElementById('statusbar-action'), text);
    announce(text);
  }

  // ---------------------------------------------------------------- rendering

  function render() {
    if (renderQueued || stopped) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      if (stopped) return;
      renderHeader();
      current.render();
      refreshRelativeTimes(current.section);
    });
  }

  function renderHeader() {
    const down = store.link === 'unreachable';
    const activity = down ? { state: 'unreachable', text: 'Daemon unreachable' } : activityOf(store.status, store.jobs);
    const studio = down ? { text: 'Unknown', tone: 'neutral' } : studioStateOf(store.status);
    const activityEl = document.getElementById('activity');
    activityEl.dataset.state = activity.state;
    setText(document.getElementById('activity-text'), activity.text);
    const bar = document.getElementById('activity-progress');
    const fraction = activity.job?.progress?.fraction;
    bar.hidden = down || typeof fraction !== 'number';
    if (!bar.hidden) {
      const value = percent(fraction);
      if (bar.value !== value) bar.value = value;
      bar.setAttribute('aria-label', `Progress of the running job: ${value}%`);
    }
    const studioEl = document.getElementById('studio-state');
    studioEl.dataset.tone = studio.tone;
    setText(document.getElementById('studio-state-text'), studio.text);
    const paused = Boolean(store.status?.paused);
    setText(pauseButton, paused ? 'Resume' : 'Pause');
    pauseButton.title = paused ? 'Take jobs again' : 'Stop taking new jobs (a running job finishes)';
    pauseButton.disabled = down || !store.status;

    unreachableBanner.hidden = !down;
    if (down) patchBanner(store.linkError);
    setText(document.getElementById('statusbar-version'), store.status ? `studio-worker ${store.status.version}` : '');
    setText(document.getElementById('statusbar-url'), store.status?.localApiUrl || location.origin);

    // Speak state changes, not the ticking elapsed time.
    const activityKey = activity.state === 'running' ? `running:${activity.job?.jobId ?? ''}` : activity.state;
    if (said.activity && said.activity !== activityKey && !down) announce(activity.state === 'running' ? activity.text.replace(/ · \d+:\d\d(:\d\d)?/, '') : activity.text);
    said.activity = activityKey;
    if (said.studio && said.studio !== studio.text && !down) announce(`Studio: ${studio.text}.`);
    said.studio = studio.text;
  }

  function patchBanner(detail) {
    if (unreachableBanner.dataset.detail === detail) return;
    unreachableBanner.dataset.detail = detail;
    setChildren(
      unreachableBanner,
      h(
        'p',
        {},
        h('strong', { text: 'Daemon unreachable. ' }),
        `The worker's daemon at ${location.origin} is not answering (${detail}). It may have stopped or be restarting: start it with `,
        h('code', { text: 'studio-worker run' }),
        ' or ',
        h('code', { text: 'studio-worker ui' }),
        '. This page reconnects by itself.',
      ),
    );
  }

  // ---------------------------------------------------------------- start

  showPage(pageFromHash(), { focus: false });
  poller.start();
  const ticker = setInterval(() => {
    if (!document.hidden) refreshRelativeTimes(current.section);
  }, POLL_MS);

  return {
    stop() {
      stopped = true;
      poller.stop();
      clearInterval(ticker);
      window.removeEventListener('hashchange', onHashChange);
      document.removeEventListener('keydown', onKeyDown);
      for (const thumb of store.thumbs.values()) if (thumb.url) URL.revokeObjectURL(thumb.url);
    },
  };
}

// ------------------------------------------------------------------ start

// `studio-worker ui` opens `/#token=…`. The token lives in this tab's session storage only.
tokenShell({ storage: sessionStorage, key: TOKEN_KEY, showSignIn: showTokenPage, createSession });
