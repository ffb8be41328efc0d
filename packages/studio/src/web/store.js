// The dashboard's state and how API answers and feed events change it. No DOM, no network.

/** Jobs kept in memory; the oldest beyond this are forgotten (the API still has them). */
const MAX_JOBS = 2000;

export function createStore() {
  return {
    workers: new Map(),
    pending: [],
    models: [],
    /** id → JobView; `attempts` is present once the job was read on its own. */
    jobs: new Map(),
    counts: {},
    filter: '',
    nextBefore: undefined,
    loadingOlder: false,
    selectedId: null,
    /** The selected job's result: {key, state, type, url, text, mime, bytes, ext, message}. */
    result: null,
    /** jobId → data: URL of the newest live preview (feed `jobPreview` events); not persisted. */
    previews: new Map(),
  };
}

/**
 * Take in a job view unless what we hold is newer (an answer fetched before an event can arrive
 * after it). Keeps the attempts list when the incoming view has none. Answers what changed:
 * {known: whether the job was known before, previous: its previous view}.
 */
export function mergeJob(store, job) {
  const previous = store.jobs.get(job.id);
  if (previous && Date.parse(previous.updatedAt) > Date.parse(job.updatedAt)) return { known: true, previous, changed: false };
  store.jobs.set(job.id, job.attempts || !previous?.attempts ? job : { ...job, attempts: previous.attempts });
  return { known: Boolean(previous), previous, changed: true };
}

/** Move one job between status counts (the API's counts are the baseline). */
export function recount(store, from, to) {
  if (from === to) return;
  if (from) store.counts[from] = Math.max(0, (store.counts[from] ?? 0) - 1);
  if (to) store.counts[to] = (store.counts[to] ?? 0) + 1;
}

/** Forget the oldest jobs beyond MAX_JOBS (never the selected one). */
export function pruneJobs(store) {
  if (store.jobs.size <= MAX_JOBS) return;
  const oldestFirst = [...store.jobs.values()].sort((a, b) => newestFirst(b, a));
  for (const job of oldestFirst.slice(0, store.jobs.size - MAX_JOBS)) {
    if (job.id !== store.selectedId) store.jobs.delete(job.id);
  }
  for (const id of store.previews.keys()) if (!store.jobs.has(id)) store.previews.delete(id);
}

/** The rows to show: the filter's jobs, newest first. */
export function visibleJobs(store) {
  return [...store.jobs.values()]
    .filter((job) => !store.filter || job.status === store.filter)
    .sort(newestFirst);
}

/** Creation order, newest first: by `seq` (jobs of one batch share createdAt), else by time. */
function newestFirst(a, b) {
  if (a.seq !== undefined && b.seq !== undefined) return b.seq - a.seq;
  return b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);
}

/**
 * Workers with their current jobs brought up to date from the job events: the feed sends a
 * worker's `currentJobIds` with its heartbeats, while job events arrive as soon as a job is
 * offered or ends, so the jobs we hold are the fresher source.
 */
export function workersWithCurrentJobs(store) {
  const holding = new Map();
  for (const job of store.jobs.values()) {
    if (job.workerId && (job.status === 'claimed' || job.status === 'running')) {
      if (!holding.has(job.workerId)) holding.set(job.workerId, []);
      holding.get(job.workerId).push(job.id);
    }
  }
  return [...store.workers.values()].map((worker) => {
    const ids = new Set(holding.get(worker.id) ?? []);
    for (const id of worker.currentJobIds) {
      const known = store.jobs.get(id);
      if (!known || (known.workerId === worker.id && (known.status === 'claimed' || known.status === 'running'))) ids.add(id);
    }
    return { ...worker, currentJobIds: [...ids] };
  });
}
