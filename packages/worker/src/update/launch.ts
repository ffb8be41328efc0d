import { readFile, realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isProcessAlive } from '../platform/lock.ts';
import { BadVersions } from './bad-versions.ts';
import { errorText } from './errors.ts';
import { entryOf, OWN_PACKAGE_ROOT } from './installer.ts';
import { INSTALLED_MARKER, defaultDataDir, updatePaths } from './paths.ts';
import { readPending, writePending, type PendingUpdate } from './pending.ts';
import { readPointer, writePointer } from './pointer.ts';
import { compareVersions, parseVersion } from './semver.ts';
import { ROLLED_BACK_FROM_ENV, UPDATED_FROM_ENV } from './started-marker.ts';
import { EXIT_RESTART, detectSupervisor } from './supervision.ts';

/** Set to 1 to run the install the launcher belongs to, whatever `current.json` says. */
export const NO_REDIRECT_ENV = 'STUDIO_WORKER_NO_REDIRECT';

/** How long a pending version has, after the launcher started it, to confirm (remove pending.json). */
export const PENDING_CONFIRM_TIMEOUT_MS = 90_000;

export interface RedirectOptions {
  dataDir?: string;
  /** The package the launcher belongs to (default: this one). */
  packageRoot?: string;
  env?: NodeJS.ProcessEnv;
}

export interface LaunchOptions extends RedirectOptions {
  /** The CLI's arguments (`process.argv.slice(2)`): only a daemon start (`run`) verifies a pending update. */
  args?: readonly string[];
  /** The process the start is made in (default: this one; the launcher and the daemon are one process). */
  pid?: number;
  isAlive?: (pid: number) => boolean;
  now?: () => Date;
}

export interface LaunchDecision {
  /** The entry script (bin) of another installed version to run; null: run this install. */
  entry: string | null;
  /** To set in this process's environment before the entry runs. */
  env: Record<string, string>;
  /** What the launcher decided, one line each, for stderr (a service's journal). */
  notes: string[];
  /**
   * Set when this start is the one try of a version a supervised handover switched in: it must
   * remove pending.json within PENDING_CONFIRM_TIMEOUT_MS (`watchPendingStart`).
   */
  verifying?: PendingUpdate;
}

/** Where a pointer leads, from the launcher's point of view. */
type Target =
  | { kind: 'other'; entry: string }
  /** This install is that version (or the pointer names the launcher's own package). */
  | { kind: 'own' }
  /** Not runnable from here; the launcher runs its own install. */
  | { kind: 'unusable'; why: string };

/**
 * For the `studio-worker` bin: the entry script of the version `<data dir>/versions/current.json`
 * names, when that is a complete install other than the launcher's own and not older than it;
 * null means "run this install". A newer npm install (the user upgraded by hand) therefore wins
 * over an older version the updater installed. Never writes anything (see `decideLaunch`).
 */
export async function redirectedEntry(options: RedirectOptions = {}): Promise<string | null> {
  const env = options.env ?? process.env;
  if (env[NO_REDIRECT_ENV] === '1') return null;
  const paths = updatePaths(options.dataDir ?? defaultDataDir(env));
  const pointer = await readPointer(paths.current);
  if (!pointer) return null;
  const target = await targetOf(paths.versions, pointer.version, options.packageRoot ?? OWN_PACKAGE_ROOT);
  return target.kind === 'other' ? target.entry : null;
}

/**
 * What the bin runs, with the bookkeeping of a supervised handover (docs/operations/auto-update.md,
 * "Under a service manager"):
 *
 * - no pending update, or not a daemon start: follow `current.json` (`redirectedEntry`);
 * - a pending version not started yet: count this start (attempts 1, our pid) and run it;
 * - a pending version whose start was made and whose process is gone without confirming: put the
 *   previous version back in `current.json`, record the version in bad-versions.json, drop the
 *   pending record and run the previous version. The failed version is never started again, so
 *   there is no crash loop: each version gets exactly one try.
 *
 * Never throws: a launcher that cannot decide runs its own install.
 */
export async function decideLaunch(options: LaunchOptions = {}): Promise<LaunchDecision> {
  const env = options.env ?? process.env;
  if (env[NO_REDIRECT_ENV] === '1') return { entry: null, env: {}, notes: [] };
  const paths = updatePaths(options.dataDir ?? defaultDataDir(env));
  const packageRoot = options.packageRoot ?? OWN_PACKAGE_ROOT;
  const notes: string[] = [];
  try {
    const pointer = await readPointer(paths.current);
    const pending = isDaemonStart(options.args ?? process.argv.slice(2)) ? await readPending(paths.pending) : null;
    if (pending && pointer?.version !== pending.version) {
      // The pointer moved on (or back) since: nothing left to verify.
      await writePending(paths.pending, null);
    } else if (pending && pointer) {
      const target = await targetOf(paths.versions, pending.version, packageRoot);
      const pid = options.pid ?? process.pid;
      const isAlive = options.isAlive ?? isProcessAlive;
      const now = (options.now ?? (() => new Date()))();
      if (target.kind === 'unusable') {
        await writePending(paths.pending, null);
        notes.push(`cannot start ${pending.version} (${target.why}); running this install instead`);
        return { entry: null, env: {}, notes };
      }
      if (pending.startedAttempts === 0) {
        const verifying: PendingUpdate = { ...pending, startedAttempts: 1, startedPid: pid, startedAt: now.toISOString() };
        await writePending(paths.pending, verifying);
        notes.push(`starting ${pending.version} (updated from ${pending.previous}); it has ${PENDING_CONFIRM_TIMEOUT_MS / 1000} s to report healthy, else ${pending.previous} comes back`);
        return { entry: target.kind === 'other' ? target.entry : null, env: { [UPDATED_FROM_ENV]: pending.previous }, notes, verifying };
      }
      if (pending.startedPid !== undefined && pending.startedPid !== pid && isAlive(pending.startedPid)) {
        // Its start still runs (and may confirm yet): this is another start (a second `run` by hand).
        return { entry: target.kind === 'other' ? target.entry : null, env: {}, notes };
      }
      return await rollBack(paths, pending, packageRoot, now, notes);
    }
    if (!pointer) return { entry: null, env: {}, notes };
    const target = await targetOf(paths.versions, pointer.version, packageRoot);
    return { entry: target.kind === 'other' ? target.entry : null, env: {}, notes };
  } catch (error) {
    notes.push(`could not follow ${paths.current} (${errorText(error)}); running this install`);
    return { entry: null, env: {}, notes };
  }
}

async function rollBack(paths: ReturnType<typeof updatePaths>, pending: PendingUpdate, packageRoot: string, now: Date, notes: string[]): Promise<LaunchDecision> {
  const reason = `did not report healthy after the update from ${pending.previous}: its start${pending.startedPid ? ` (pid ${pending.startedPid})` : ''} ended or was stopped first`;
  await writePointer(paths.current, { version: pending.previous, previous: pending.version, switchedAt: now.toISOString() });
  try {
    await new BadVersions(paths.badVersions).record(pending.version, reason, now);
  } catch (error) {
    notes.push(`could not record ${pending.version} in ${paths.badVersions} (${errorText(error)}); the restarted ${pending.previous} skips it anyway (${ROLLED_BACK_FROM_ENV})`);
  }
  await writePending(paths.pending, null);
  notes.push(`${pending.version} ${reason}; rolled back to ${pending.previous}; ${pending.version} will not be tried again`);
  const target = await targetOf(paths.versions, pending.previous, packageRoot);
  if (target.kind === 'unusable') notes.push(`${pending.previous} cannot be started from ${paths.versions} (${target.why}); running this install`);
  return { entry: target.kind === 'other' ? target.entry : null, env: { [ROLLED_BACK_FROM_ENV]: pending.version }, notes };
}

/** How a watch of a counted start ended. */
export type PendingWatchOutcome = 'confirmed' | 'timed_out' | 'cancelled' | 'unsupervised';

/**
 * After a start `decideLaunch` counted (`verifying`): if that version has not removed pending.json
 * within `timeoutMs` (it hangs on its way up), exit with EXIT_RESTART so that the supervisor starts
 * the launcher again, which then rolls back. Only under a supervisor (nobody restarts otherwise).
 * The timer does not keep the process alive.
 */
export function watchPendingStart(
  verifying: PendingUpdate,
  options: { dataDir?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; exit?: (code: number) => void; note?: (line: string) => void } = {},
): { cancel(): void; outcome: Promise<PendingWatchOutcome> } {
  const env = options.env ?? process.env;
  if (!detectSupervisor({ env })) return { cancel: () => {}, outcome: Promise.resolve('unsupervised') };
  const paths = updatePaths(options.dataDir ?? defaultDataDir(env));
  const timeoutMs = options.timeoutMs ?? PENDING_CONFIRM_TIMEOUT_MS;
  const outcome = Promise.withResolvers<PendingWatchOutcome>();
  const timer = setTimeout(() => {
    void readPending(paths.pending).then((pending) => {
      if (!pending || pending.version !== verifying.version || pending.startedPid !== verifying.startedPid) return outcome.resolve('confirmed');
      options.note?.(`${verifying.version} did not report healthy within ${Math.round(timeoutMs / 1000)} s of its start; exiting with ${EXIT_RESTART} so that the service manager restarts studio-worker and ${verifying.previous} comes back`);
      outcome.resolve('timed_out');
      (options.exit ?? process.exit)(EXIT_RESTART);
    });
  }, timeoutMs);
  timer.unref();
  return {
    cancel: () => {
      clearTimeout(timer);
      outcome.resolve('cancelled');
    },
    outcome: outcome.promise,
  };
}

/** Whether the CLI arguments start the daemon (`run`), past the global `--config <file>`. */
export function isDaemonStart(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--config') {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    return arg === 'run';
  }
  return false;
}

async function targetOf(versionsDir: string, version: string, packageRoot: string): Promise<Target> {
  const dir = join(versionsDir, version);
  const [ownRoot, targetRoot] = await Promise.all([realpath(packageRoot).catch(() => resolve(packageRoot)), realpath(dir).catch(() => null)]);
  if (targetRoot !== null && targetRoot === ownRoot) return { kind: 'own' };
  const ownVersion = await readOwnVersion(packageRoot);
  if (ownVersion === version) return { kind: 'own' };
  if (targetRoot === null) return { kind: 'unusable', why: `${dir} does not exist` };
  try {
    const marker = JSON.parse(await readFile(join(dir, INSTALLED_MARKER), 'utf8')) as { version?: unknown };
    if (marker.version !== version) return { kind: 'unusable', why: `${dir} is not completely installed` };
  } catch {
    return { kind: 'unusable', why: `${dir} is not completely installed` };
  }
  const own = ownVersion ? parseVersion(ownVersion) : null;
  const wanted = parseVersion(version);
  if (own && wanted && compareVersions(wanted, own) < 0) return { kind: 'unusable', why: `it is older than this install (${ownVersion})` };
  try {
    return { kind: 'other', entry: await entryOf(dir, version) };
  } catch (error) {
    return { kind: 'unusable', why: errorText(error) };
  }
}

async function readOwnVersion(packageRoot: string): Promise<string | null> {
  try {
    const own = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof own.version === 'string' ? own.version : null;
  } catch {
    return null;
  }
}
