import { ApiError, createApi } from './api.js';
import { askConfirm, askText } from '/kit/dialog.js';
import { h, setChildren } from '/kit/dom.js';
import { createAnnouncer, createNotice } from '/kit/messages.js';
import { tokenShell } from '/kit/token.js';
import { createFeed } from './feed.js';
import { createStore, mergeJob, pruneJobs, recount, visibleJobs, workersWithCurrentJobs } from './store.js';
import { refreshRelativeTimes } from './widgets.js';
import { jobDetailSection, renderJobDetail } from './views/job-detail.js';
import { jobsSection, renderJobs } from './views/jobs.js';
import { renderLogin } from './views/login.js';
import { pendingSection, renderPending } from './views/pending.js';
import { submitSection } from './views/submit.js';
import { renderWorkers, workersSection } from './views/workers.js';

const TOKEN_KEY = 'studio.adminToken';
const PAGE = 50;

const main = document.getElementById('main');
const feedStatus = document.getElementById('feed-status');
const signOutButton = document.getElementById('sign-out');
const { show: showNotice, hide: hideNotice } = createNotice(document.getElementById('notice'));
const announce = createAnnouncer(document.getElementById('announcer'));

// ------------------------------------------------------------------ sign-in

function showLogin({ error, submit }) {
  signOutButton.hidden = true;
  feedStatus.replaceChildren();
  hideNotice();
  renderLogin(main, { error, onSubmit: submit });
}

signOutButton.addEventListener('click', () => {
  shell.signOut();
  announce('Signed out.');
});

// ------------------------------------------------------------------ one signed-in session

function createSession(token, shell) {
  const store = createStore();
  let stopped = false;
  let syncGeneration = 0;
  /** Events that arrive while the lists are being fetched; applied on top of the answers. */
  let buffered = null;
  let countsTimer;
  let modelsTimer;
  let verifying = false;
  let renderQueued = false;
  let feedState = { state: 'connecting' };
  /** Subjects (job, request, worker) with an action in flight. */
  const busy = new Set();

  const api = createApi({
    token: () => token,
    onUnauthorized(error) {
      if (stopped) return;
      shell.refused(`The studio refused this admin token (${error.code}): it is mistyped, or a newer token replaced it. Paste the current one.`);
    },
  });

  const actions = {
    selectJob,
    closeDetail() {
      select(null);
      document.getElementById('jobs-title')?.focus();
    },
    setFilter,
    loadOlder,
    cancelJob,
    retryJob,
    approve,
    reject,
    deleteWorker,
  };
  const submit = submitSection({ onSubmit: submitJob });
  const sections = {
    pending: pendingSection(),
    submit: submit.section,
    workers: workersSection(),
    jobs: jobsSection(actions),
    detail: jobDetailSection(),
  };
  sections.jobs.querySelector('h2').tabIndex = -1;
  setChildren(
    main,
    h('h1', { class: 'visually-hidden', text: 'Studio dashboard' }),
    h(
      'div',
      { class: 'layout' },
      h('div', { class: 'col col-side' }, sections.pending, sections.submit, sections.workers),
      h('div', { class: 'col col-jobs' }, sections.jobs),
      h('div', { class: 'col col-detail' }, sections.detail),
    ),
  );

  const feed = createFeed({
    token,
    onState: showFeedState,
    onHello: () => sync(),
    onEvents(events) {
      if (buffered) buffered.push(...events);
      else applyEvents(events);
    },
    onRefused: verifyToken,
  });
  feed.start();
  sync();
  const ticker = setInterval(() => {
    refreshRelativeTimes();
    updateCountdown();
  }, 1000);

  // ---------------------------------------------------------------- loading

  /** Fetch every list again (first load and after every reconnect: events were missed). */
  async function sync() {
    const generation = ++syncGeneration;
    buffered ??= [];
    try {
      const [workers, pending, models, jobs] = await Promise.all([
        api.workers(),
        api.pending(),
        api.models(),
        api.jobs({ status: store.filter, limit: PAGE }),
      ]);
      if (stopped || generation !== syncGeneration) return;
      store.workers = new Map(workers.workers.map((w) => [w.id, w]));
      store.pending = pending.requests;
      store.models = models.models;
      submit.setModels(store.models);
      const selected = store.selectedId ? store.jobs.get(store.selectedId) : undefined;
      store.jobs = new Map();
      if (selected) store.jobs.set(selected.id, selected);
      for (const job of jobs.jobs) mergeJob(store, job);
      store.counts = { ...jobs.counts };
      store.nextBefore = jobs.nextBefore;
      const events = buffered;
      buffered = null;
      applyEvents(events);
      if (store.selectedId) void loadJob(store.selectedId);
      hideNotice('sync');
    } catch (error) {
      if (stopped || generation !== syncGeneration) return;
      const events = buffered;
      buffered = null;
      applyEvents(events);
      if (!(error instanceof ApiError && error.status === 401)) showNotice(`The dashboard could not load its data: ${error.message}`, 'sync');
    }
  }

  /** The feed closed before its hello: find out whether the token is the reason (a 401 signs out). */
  async function verifyToken() {
    if (verifying || stopped) return;
    verifying = true;
    try {
      await api.models();
    } catch {
      // 401 is handled by the API client; anything else is the studio being down, and the feed retries.
    } finally {
      verifying = false;
    }
  }

  async function loadJob(jobId) {
    try {
      const job = await api.job(jobId);
      if (stopped) return;
      const { known, previous, changed } = mergeJob(store, job);
      if (changed && !known) refreshCountsSoon();
      else if (changed) recount(store, previous.status, job.status);
      render();
    } catch (error) {
      if (!stopped && store.selectedId === jobId) showNotice(`Job ${jobId} could not be loaded: ${error.message}`);
    }
  }

  /** A job we never saw changed: its old status is unknown, so ask for the counts (debounced). */
  function refreshCountsSoon() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(async () => {
      try {
        const answer = await api.jobs({ limit: 1 });
        if (stopped) return;
        store.counts = { ...answer.counts };
        render();
      } catch {
        // The next change or reconnect tries again.
      }
    }, 250);
  }

  /** Ask again which models an online worker runs (debounced): the picker's groups and preselection follow. */
  function refreshModelsSoon() {
    clearTimeout(modelsTimer);
    modelsTimer = setTimeout(async () => {
      try {
        const answer = await api.models();
        if (stopped) return;
        store.models = answer.models;
        submit.setModels(store.models);
      } catch {
        // The next worker change or reconnect tries again.
      }
    }, 100);
  }

  // ---------------------------------------------------------------- events

  function applyEvents(events) {
    for (const event of events) {
      switch (event.type) {
        case 'job':
          applyJob(event.job);
          break;
        case 'worker': {
          const before = store.workers.get(event.worker.id);
          store.workers.set(event.worker.id, event.worker);
          // Which models run now follows who is online and what they serve (not every heartbeat).
          if (!before || before.state !== event.worker.state || JSON.stringify(before.capabilities) !== JSON.stringify(event.worker.capabilities)) refreshModelsSoon();
          break;
        }
        case 'workerRemoved':
          store.workers.delete(event.workerId);
          refreshModelsSoon();
          break;
        case 'pendingAdded':
          if (!store.pending.some((r) => r.requestId === event.request.requestId)) {
            store.pending = [...store.pending, event.request];
            announce(`New registration request from ${event.request.machineName}.`);
          }
          break;
        case 'pendingRemoved':
          store.pending = store.pending.filter((r) => r.requestId !== event.requestId);
          break;
        case 'jobPreview':
          // Only the newest picture of each job is kept; it is dropped when the job ends (job-detail.js).
          store.previews.set(event.jobId, `data:${event.mime};base64,${event.data}`);
          break;
        default:
          break; // a newer studio's event type: nothing to show for it yet
      }
    }
    pruneJobs(store);
    render();
  }

  function applyJob(job) {
    const { known, previous, changed } = mergeJob(store, job);
    if (!changed) return;
    if (!known) refreshCountsSoon();
    else recount(store, previous.status, job.status);
    if (job.id === store.selectedId && (!previous || previous.status !== job.status || previous.attempt !== job.attempt)) {
      if (previous && previous.status !== job.status) announce(`Job ${job.id} is now ${job.status}.`);
      void loadJob(job.id); // for the attempts table, which events do not carry
    }
  }

  // ---------------------------------------------------------------- actions

  function selectJob(jobId) {
    select(jobId);
    void loadJob(jobId);
    if (window.matchMedia('(max-width: 759px)').matches) {
      // One column: the detail is far below the list, so take the reader there.
      requestAnimationFrame(() => {
        sections.detail.scrollIntoView({ block: 'start' });
        document.getElementById('job-detail-title')?.focus({ preventScroll: true });
      });
    }
  }

  function select(jobId) {
    store.selectedId = jobId;
    render();
  }

  async function setFilter(status) {
    store.filter = status;
    render();
    try {
      const answer = await api.jobs({ status, limit: PAGE });
      if (stopped || store.filter !== status) return;
      for (const job of answer.jobs) mergeJob(store, job);
      store.counts = { ...answer.counts };
      store.nextBefore = answer.nextBefore;
      render();
    } catch (error) {
      showNotice(`Jobs could not be loaded: ${error.message}`);
    }
  }

  async function loadOlder() {
    if (store.nextBefore === undefined || store.loadingOlder) return;
    store.loadingOlder = true;
    render();
    const filter = store.filter;
    try {
      const answer = await api.jobs({ status: filter, limit: PAGE, before: store.nextBefore });
      if (stopped || store.filter !== filter) return;
      for (const job of answer.jobs) mergeJob(store, job);
      store.nextBefore = answer.nextBefore;
    } catch (error) {
      showNotice(`Older jobs could not be loaded: ${error.message}`);
    } finally {
      store.loadingOlder = false;
      render();
    }
  }

  async function submitJob(model, task) {
    const job = await api.createJob(model, task);
    if (stopped) return;
    applyJob(job);
    if (store.filter && store.filter !== job.status) void setFilter('');
    select(job.id);
    announce(`Job ${job.id} created; it is ${job.status}.`);
    return job;
  }

  async function cancelJob(jobId) {
    const job = store.jobs.get(jobId);
    if (!job) return;
    const confirmed = await askConfirm({
      title: `Cancel job ${job.id}?`,
      message: job.status === 'queued' ? 'It will not be offered to any worker.' : 'The worker running it is told to stop; a result it sends later is refused.',
      confirmLabel: 'Cancel job',
      cancelLabel: 'Keep it',
      danger: true,
    });
    if (!confirmed) return;
    await run(`job:${job.id}`, async () => {
      applyJob(await api.cancelJob(job.id));
      render();
      announce(`Job ${job.id} cancelled.`);
    });
  }

  async function retryJob(jobId) {
    await run(`job:${jobId}`, async () => {
      applyJob(await api.retryJob(jobId));
      render();
      announce(`Job ${jobId} queued again.`);
    });
  }

  async function approve(request) {
    await run(`request:${request.requestId}`, async () => {
      await api.approve(request.requestId);
      store.pending = store.pending.filter((r) => r.requestId !== request.requestId);
      render();
      announce(`Approved ${request.machineName}. It appears under Workers, approved and waiting for it to connect, until it picks up its token.`);
    });
  }

  async function reject(request) {
    const reason = await askText({
      title: `Reject ${request.machineName}?`,
      message: 'The worker stops asking and shows your reason to its operator.',
      label: 'Reason (optional)',
      confirmLabel: 'Reject',
      danger: true,
    });
    if (reason === null) return;
    await run(`request:${request.requestId}`, async () => {
      await api.reject(request.requestId, reason);
      store.pending = store.pending.filter((r) => r.requestId !== request.requestId);
      render();
      announce(`Rejected ${request.machineName}.`);
    });
  }

  async function deleteWorker(worker) {
    const name = worker.label || worker.id;
    const confirmed = await askConfirm({
      title: `Delete worker ${name}?`,
      message: 'Its connection is closed, its running jobs go back to the queue, and the machine has to register again to come back.',
      confirmLabel: 'Delete worker',
      danger: true,
    });
    if (!confirmed) return;
    await run(`worker:${worker.id}`, async () => {
      await api.deleteWorker(worker.id);
      store.workers.delete(worker.id);
      render();
      announce(`Deleted worker ${name}.`);
    });
  }

  /**
   * Run an action once at a time per subject (a double click approves once); its failure is shown
   * to the operator (a 401 signs out instead).
   */
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

  // ---------------------------------------------------------------- results

  /** Fetch the selected job's result once per (job, attempt); images need the bearer header, so a blob URL. */
  function ensureResult() {
    const job = store.selectedId ? store.jobs.get(store.selectedId) : undefined;
    const key = job?.status === 'done' && job.result ? `${job.id}:${job.attempt}` : null;
    if ((store.result?.key ?? null) === key) return;
    dropResult();
    if (!key) return;
    store.result = { key, state: 'loading' };
    void (async () => {
      try {
        const response = await api.result(job.id);
        let next;
        if (job.result.type === 'json') {
          const text = await response.text();
          let pretty = text;
          try {
            pretty = JSON.stringify(JSON.parse(text), null, 2);
          } catch {
            // Not JSON after all: show it as it came.
          }
          next = { key, state: 'ready', type: 'json', text: pretty, url: URL.createObjectURL(new Blob([pretty], { type: 'application/json' })), ext: 'json' };
        } else {
          const blob = await response.blob();
          next = { key, state: 'ready', type: 'file', url: URL.createObjectURL(blob), mime: job.result.mime || blob.type, bytes: blob.size, ext: job.result.ext };
        }
        if (stopped || store.result?.key !== key) {
          URL.revokeObjectURL(next.url);
          return;
        }
        store.result = next;
      } catch (error) {
        if (stopped || store.result?.key !== key) return;
        store.result = { key, state: 'error', message: error.message };
      }
      render();
    })();
  }

  function dropResult() {
    if (store.result?.url) URL.revokeObjectURL(store.result.url);
    store.result = null;
  }

  // ---------------------------------------------------------------- rendering

  function render() {
    if (renderQueued || stopped) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      if (stopped) return;
      ensureResult();
      document.title = store.pending.length ? `(${store.pending.length} waiting) Studio dashboard` : 'Studio dashboard';
      renderPending(sections.pending, store.pending, actions);
      renderWorkers(sections.workers, workersWithCurrentJobs(store), actions);
      renderJobs(
        sections.jobs,
        { jobs: visibleJobs(store), counts: store.counts, filter: store.filter, selectedId: store.selectedId, hasOlder: store.nextBefore !== undefined, loadingOlder: store.loadingOlder },
        actions,
      );
      renderJobDetail(sections.detail, { job: store.selectedId ? store.jobs.get(store.selectedId) : undefined, result: store.result, preview: store.selectedId ? store.previews.get(store.selectedId) : undefined }, actions);
    });
  }

  function showFeedState(next) {
    const was = feedState.state;
    feedState = next;
    if (next.state === 'live' && was !== 'live') announce('Live updates connected.');
    if (next.state === 'reconnecting' && was === 'live') announce('Live updates lost; reconnecting.');
    const label = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting' }[next.state];
    setChildren(
      feedStatus,
      h('span', { class: `dot dot-${next.state}`, 'aria-hidden': 'true' }),
      h('span', { class: 'feed-label', text: label }),
      next.state === 'reconnecting' ? h('span', { class: 'countdown muted' }) : null,
      next.state === 'reconnecting' ? h('button', { type: 'button', class: 'secondary small', onClick: () => feed.reconnectNow() }, 'Reconnect now') : null,
    );
    feedStatus.dataset.state = next.state;
    updateCountdown();
  }

  function updateCountdown() {
    const el = feedStatus.querySelector('.countdown');
    if (!el || feedState.state !== 'reconnecting') return;
    const seconds = Math.max(0, Math.ceil((feedState.retryAt - Date.now()) / 1000));
    el.textContent = seconds > 0 ? `in ${seconds} s` : 'now';
  }

  return {
    stop() {
      stopped = true;
      feed.stop();
      clearInterval(ticker);
      clearTimeout(countsTimer);
      clearTimeout(modelsTimer);
      dropResult();
    },
  };
}

// ------------------------------------------------------------------ start

// A `#token=…` link printed by the studio signs in.
const shell = tokenShell({
  storage: localStorage,
  key: TOKEN_KEY,
  showSignIn: showLogin,
  createSession(token, shell) {
    const session = createSession(token, shell);
    signOutButton.hidden = false;
    return session;
  },
});
