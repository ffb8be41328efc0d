/**
 * `STUDIO_WORKER_EXIT_WITH_PARENT=1`: the daemon stops (gracefully) when the process that started
 * it goes away. Set by launchers that own their worker (`npm start`): a launcher killed with
 * SIGKILL cannot forward a signal, and its worker would otherwise run on as an orphan, holding the
 * config's lock and a session with nobody to stop it. The variable is removed from our environment
 * once read, so nothing the daemon starts (engines, an updated successor) inherits it.
 */
export const EXIT_WITH_PARENT_ENV = 'STUDIO_WORKER_EXIT_WITH_PARENT';

/** How often the parent is looked at: an orphan is noticed within this. */
export const PARENT_POLL_MS = 1_000;

export interface ParentWatchOptions {
  env?: NodeJS.ProcessEnv;
  /** Default: `() => process.ppid` (re-read by Node on every access). */
  parentPid?: () => number;
  intervalMs?: number;
}

/**
 * Takes the opt-in from the environment. When set, calls `onGone(originalParent)` once, at the
 * first poll that finds another parent (the original one died and we were re-parented). Returns
 * the function that stops the watch, or null when the opt-in is absent.
 */
export function watchParentFromEnv(onGone: (parent: number) => void, options: ParentWatchOptions = {}): (() => void) | null {
  const env = options.env ?? process.env;
  const wanted = env[EXIT_WITH_PARENT_ENV] === '1';
  delete env[EXIT_WITH_PARENT_ENV];
  if (!wanted) return null;
  const parentPid = options.parentPid ?? (() => process.ppid);
  const original = parentPid();
  const timer = setInterval(() => {
    if (parentPid() === original) return;
    clearInterval(timer);
    onGone(original);
  }, options.intervalMs ?? PARENT_POLL_MS);
  // The watch alone never keeps the daemon alive.
  timer.unref();
  return () => clearInterval(timer);
}
