import { rm } from 'node:fs/promises';
import type { Logger } from '@studio-worker/log';
import type { WorkerConfig } from '../config/index.ts';
import type { Release } from '../platform/job-gate.ts';
import type { BadVersions } from './bad-versions.ts';
import { chooseUpdate } from './choose.ts';
import { downloadVerifiedArchive } from './download.ts';
import { UpdateError, errorText, type UpdateErrorCode } from './errors.ts';
import type { FeedClient } from './feed.ts';
import { displayUrl } from './http.ts';
import type { Installer, InstalledVersion } from './installer.ts';
import type { CurrentPointer } from './pointer.ts';
import { isPrerelease, parseVersion, type Version } from './semver.ts';
import { readPending, writePending } from './pending.ts';
import { ROLLED_BACK_FROM_ENV, UPDATED_FROM_ENV, clearStartup } from './started-marker.ts';
import { waitUntilHealthy, type Launcher, type Successor } from './successor.ts';
import { EXIT_RESTART, type Supervisor } from './supervision.ts';

/** The four `auto_update_*` settings, read again at every tick (the config can change at runtime). */
export interface AutoUpdateSettings {
  enabled: boolean;
  intervalSecs: number;
  feed: string;
  prerelease: boolean;
}

export function autoUpdateSettings(config: Pick<WorkerConfig, 'autoUpdateEnabled' | 'autoUpdateIntervalSecs' | 'autoUpdateFeed' | 'autoUpdatePrerelease'>): AutoUpdateSettings {
  return { enabled: config.autoUpdateEnabled, intervalSecs: config.autoUpdateIntervalSecs, feed: config.autoUpdateFeed, prerelease: config.autoUpdatePrerelease };
}

/** How the running daemon hands over to the new version (and back, when the new one fails). */
export interface HandoverOptions {
  /** Stop this daemon gracefully; it must release the daemon lock, which the successor needs. */
  stopCurrent: () => Promise<void>;
  /** Starts a version's entry script as a new process (the restart hook). */
  launcher: Launcher;
  /** The config dir whose started.json the successor writes. */
  configDir: string;
  /** The entry script that starts the running version again, for a rollback (normally process.argv[1]). */
  previousEntry: string;
  /** How long a successor has to report healthy. Default 90 s (VRAM detection and engine probes come first). */
  healthTimeoutMs?: number;
  /** How long it must keep running after that. Default 5 s. */
  settleMs?: number;
  pollMs?: number;
  /**
   * Set when a service manager restarts this process (supervision.ts). The new version is then not
   * started here, where the supervisor would kill it with this process's unit: the switch is
   * recorded in `pendingFile` and this process exits with `restartExitCode`; the supervisor starts
   * the launcher again, which runs the new version once and rolls back if it does not confirm.
   */
  supervisor?: Supervisor | null;
  /** Default EXIT_RESTART (75). */
  restartExitCode?: number;
}

export interface AutoUpdaterOptions {
  currentVersion: string;
  settings: () => AutoUpdateSettings;
  /** The daemon's job gate: an update is applied only while it holds it (DESIGN.md worker rule 2). */
  gate: { readonly busy: boolean; tryAcquire(): Release | null };
  feed: FeedClient;
  installer: Installer;
  badVersions: BadVersions;
  /** Where archives are downloaded to (and removed from once unpacked). */
  downloadsDir: string;
  handover: HandoverOptions;
  log: Logger;
  /** The loop's tick (the original's 60 s); elapsed ticks add up to `auto_update_interval_secs`. */
  tickMs?: number;
  download?: { timeoutMs?: number; maxBytes?: number };
  /** Our own environment: a version restarted after a failed update names the failure here. */
  env?: NodeJS.ProcessEnv;
  /**
   * `versions/pending.json`: where a supervised handover records the switch, and what a version
   * started by one removes once it has been up for `handover.settleMs` (`start()`).
   */
  pendingFile?: string;
  /** One check this long after `start()`, besides the interval's (STUDIO_WORKER_UPDATE_FIRST_CHECK_MS). */
  firstCheckMs?: number;
}

export type UpdateOutcome =
  | { kind: 'disabled' }
  /** The interval has not passed yet. */
  | { kind: 'waiting' }
  /** A check or an apply is already running. */
  | { kind: 'in_progress' }
  | { kind: 'stopped' }
  /** The worker holds the job gate: tried again at the next tick. */
  | { kind: 'busy'; available?: string }
  | { kind: 'up_to_date'; current: string }
  | { kind: 'check_failed'; error: UpdateError }
  | { kind: 'not_updatable'; available: string; reason: string }
  /** Applying failed before anything was switched; this version keeps running. */
  | { kind: 'failed'; target: string; error: UpdateError }
  /** The new version runs and is healthy; this process should exit with `handoff`'s code. */
  | { kind: 'handed_over'; target: string; pid: number | undefined }
  /** Supervised: switched and recorded as pending; this process exits with `exitCode` for the supervisor's restart. */
  | { kind: 'restart_requested'; target: string; supervisor: Supervisor; exitCode: number }
  /** The new version did not become healthy: switched back and (if `restarted`) the old version runs again. */
  | { kind: 'rolled_back'; target: string; reason: string; restarted: boolean };

const LOG_OP = 'auto_update';
/** Errors that mean someone tampered with the release or the feed: logged as errors, not warnings. */
const ALARMING: ReadonlySet<UpdateErrorCode> = new Set(['integrity_mismatch', 'unsafe_archive', 'no_integrity', 'insecure_url']);

/**
 * The auto-updater (original-spec §3.11, with the rollback the original lacked): ticks every
 * minute, checks the feed once `auto_update_interval_secs` have added up, and applies a higher
 * version only between jobs, holding the job gate. An update is downloaded, verified, unpacked
 * beside the running version, switched in, and started; if the new version does not report
 * healthy, the switch is undone, the old version restarted, and the new one never tried again.
 */
export class AutoUpdater {
  readonly #options: AutoUpdaterOptions;
  readonly #log: Logger;
  readonly #current: Version;
  readonly #tickMs: number;
  readonly #stop = new AbortController();
  /** Versions that failed here, also when bad-versions.json could not be written. */
  readonly #knownBad = new Set<string>();
  #elapsedMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<UpdateOutcome> | null = null;
  #handingOver = false;
  #handoff: Promise<number> | null = null;
  #confirmTimer: NodeJS.Timeout | undefined;

  constructor(options: AutoUpdaterOptions) {
    const current = parseVersion(options.currentVersion);
    if (!current) throw new Error(`the running version "${options.currentVersion}" is not a semantic version`);
    this.#options = options;
    this.#current = current;
    this.#log = options.log;
    this.#tickMs = options.tickMs ?? 60_000;
    const rolledBackFrom = (options.env ?? process.env)[ROLLED_BACK_FROM_ENV];
    if (rolledBackFrom) this.#knownBad.add(rolledBackFrom);
  }

  /**
   * Set once a new version has been started: resolves with the exit code for this process (0 when
   * the new version, or after a rollback the old one, runs on; 1 when neither could be started).
   * The daemon's run loop awaits it after `stopCurrent` made the daemon finish.
   */
  get handoff(): Promise<number> | null {
    return this.#handoff;
  }

  /**
   * Start ticking (the first check comes one interval later, or after `firstCheckMs`). Also
   * confirms a supervised update to this version once it has been up for the settle time. The
   * timers do not keep the process alive.
   */
  start(): void {
    if (this.#timer || this.#stop.signal.aborted) return;
    this.#timer = setInterval(() => void this.tick(), this.#tickMs);
    this.#timer.unref();
    if (this.#options.firstCheckMs !== undefined) setTimeout(() => void this.#firstCheck(), this.#options.firstCheckMs).unref();
    if (this.#options.pendingFile) {
      this.#confirmTimer = setTimeout(() => void this.confirmStart(), this.#options.handover.settleMs ?? 5_000);
      this.#confirmTimer.unref();
    }
  }

  async #firstCheck(): Promise<void> {
    if (this.#stop.signal.aborted || this.#running || this.#handingOver || !this.#options.settings().enabled) return;
    if (this.#options.gate.busy) {
      this.#log.info({ op: LOG_OP }, 'skipping check: worker is busy on a job');
      return;
    }
    await this.checkAndApply();
  }

  /**
   * A supervised update to this version is proven: it has been up for the settle time. Removes
   * `pending.json` (so the launcher will not roll it back) and the versions no longer needed.
   * Resolves with whether there was such an update. Never throws.
   */
  async confirmStart(): Promise<boolean> {
    const file = this.#options.pendingFile;
    if (!file || this.#stop.signal.aborted) return false;
    const current = this.#current.text;
    try {
      const pending = await readPending(file);
      if (!pending || pending.version !== current) return false;
      await writePending(file, null);
      this.#log.info({ op: LOG_OP, current, previous: pending.previous }, `${current} is healthy after the update from ${pending.previous}; update confirmed`);
      await this.#prune([current, pending.previous]);
      return true;
    } catch (error) {
      this.#log.warn({ op: LOG_OP, err: error }, `could not confirm the update to ${current} (${file}): ${errorText(error)}; the next start rolls it back`);
      return false;
    }
  }

  /**
   * Stop ticking and abort a check or install in flight (its gate is given back). A handover that
   * has begun is not interrupted: it is what stops the daemon.
   */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#confirmTimer);
    if (!this.#handingOver) this.#stop.abort(new UpdateError('cancelled', 'the daemon is shutting down'));
  }

  /** One tick of the loop. Never throws. */
  async tick(): Promise<UpdateOutcome> {
    if (this.#stop.signal.aborted) return { kind: 'stopped' };
    if (this.#running || this.#handingOver) return { kind: 'in_progress' };
    const settings = this.#options.settings();
    if (!settings.enabled) {
      this.#elapsedMs = 0;
      return { kind: 'disabled' };
    }
    this.#elapsedMs += this.#tickMs;
    if (this.#elapsedMs < settings.intervalSecs * 1000) return { kind: 'waiting' };
    if (this.#options.gate.busy) {
      // The elapsed time stays: the next tick checks again.
      this.#log.info({ op: LOG_OP }, 'skipping check: worker is busy on a job');
      return { kind: 'busy' };
    }
    this.#elapsedMs = 0;
    return this.checkAndApply();
  }

  /** Check the feed now and apply a newer version (the loop's body without the interval). Never throws. */
  async checkAndApply(): Promise<UpdateOutcome> {
    if (this.#stop.signal.aborted) return { kind: 'stopped' };
    if (this.#running || this.#handingOver) return { kind: 'in_progress' };
    const run = this.#checkAndApply().catch((error: unknown): UpdateOutcome => {
      this.#log.error({ op: LOG_OP, err: error }, `update failed: ${errorText(error)}`);
      return { kind: 'failed', target: 'unknown', error: asUpdateError(error) };
    });
    this.#running = run;
    try {
      return await run;
    } finally {
      this.#running = null;
    }
  }

  async #checkAndApply(): Promise<UpdateOutcome> {
    const settings = this.#options.settings();
    const signal = this.#stop.signal;
    const current = this.#current.text;
    let feed;
    try {
      feed = await this.#options.feed.fetch(settings.feed, signal);
    } catch (error) {
      const failure = asUpdateError(error);
      if (failure.code === 'cancelled') return { kind: 'stopped' };
      this.#log.warn({ op: LOG_OP, code: failure.code, feed: displayUrl(settings.feed) }, `check failed: ${failure.message}`);
      return { kind: 'check_failed', error: failure };
    }
    for (const ignored of feed.ignored) this.#log.debug({ op: LOG_OP }, `feed entry ignored: ${ignored}`);
    const bad = new Set([...(await this.#options.badVersions.load()).keys(), ...this.#knownBad]);
    const choice = chooseUpdate(feed, { current: this.#current, prerelease: settings.prerelease, bad });
    for (const skipped of choice.skipped) this.#log.debug({ op: LOG_OP, version: skipped.version }, `not taking ${skipped.version}: ${skipped.why}`);
    if (choice.kind === 'up_to_date') {
      this.#log.info({ op: LOG_OP, current }, `up to date at ${current}`);
      return { kind: 'up_to_date', current };
    }
    const release = choice.release;
    const target = release.version.text;
    const announce = `update available ${current} -> ${target}${isPrerelease(release.version) ? ' (prerelease)' : ''}`;
    const refusal = await this.#options.installer.refusal();
    if (refusal) {
      this.#log.info({ op: LOG_OP, current, target }, `${announce}; not applying: ${refusal}`);
      return { kind: 'not_updatable', available: target, reason: refusal };
    }
    const releaseGate = this.#options.gate.tryAcquire();
    if (!releaseGate) {
      this.#elapsedMs = settings.intervalSecs * 1000;
      this.#log.info({ op: LOG_OP, current, target }, `${announce}; skipping: worker is busy`);
      return { kind: 'busy', available: target };
    }

    this.#log.info({ op: LOG_OP, current, target, feed: displayUrl(feed.url) }, `${announce}; applying`);
    let handingOver = false;
    try {
      const archive = await downloadVerifiedArchive(this.#options.feed.http, feed, release, {
        dir: this.#options.downloadsDir,
        signal,
        ...(this.#options.download?.timeoutMs ? { timeoutMs: this.#options.download.timeoutMs } : {}),
        ...(this.#options.download?.maxBytes ? { maxBytes: this.#options.download.maxBytes } : {}),
      });
      this.#log.info({ op: LOG_OP, target, bytes: archive.bytes, algorithm: archive.digest.algorithm }, `downloaded ${target} (${archive.bytes} bytes); ${archive.digest.algorithm} matches ${archive.digest.source}`);
      let installed: InstalledVersion;
      try {
        installed = await this.#options.installer.install(target, archive.path, signal);
      } finally {
        await rm(archive.path, { force: true });
      }
      if (signal.aborted) throw new UpdateError('cancelled', 'the daemon is shutting down');
      const supervisor = this.#options.handover.supervisor ?? null;
      if (supervisor) return await this.#restartThroughSupervisor(installed, supervisor, () => (handingOver = true));
      const previous = await this.#options.installer.activate(target);
      handingOver = true;
      return await this.#handOver(installed, previous);
    } catch (error) {
      const failure = asUpdateError(error);
      if (failure.code === 'cancelled') {
        this.#log.info({ op: LOG_OP, target }, `update to ${target} stopped: the daemon is shutting down`);
        return { kind: 'stopped' };
      }
      const level = ALARMING.has(failure.code) ? 'error' : 'warn';
      this.#log[level]({ op: LOG_OP, code: failure.code, current, target }, `update failed: ${failure.message}; still running ${current}`);
      return { kind: 'failed', target, error: failure };
    } finally {
      if (!handingOver) releaseGate();
    }
  }

  /**
   * Under a supervisor: record the switch as pending, switch, stop this daemon and exit with the
   * restart code. The launcher the supervisor starts runs the new version once (launch.ts).
   */
  async #restartThroughSupervisor(installed: InstalledVersion, supervisor: Supervisor, committed: () => void): Promise<UpdateOutcome> {
    const file = this.#options.pendingFile;
    const current = this.#current.text;
    const target = installed.version;
    if (!file) throw new UpdateError('local_io', `no pending file is configured for a handover under ${supervisor}`);
    try {
      await writePending(file, { version: target, previous: current, startedAttempts: 0, switchedAt: new Date().toISOString() });
    } catch (error) {
      throw new UpdateError('local_io', `cannot record the pending update in ${file}: ${errorText(error)}`, { cause: error });
    }
    try {
      await this.#options.installer.activate(target);
    } catch (error) {
      await writePending(file, null).catch(() => {});
      throw new UpdateError('local_io', `cannot switch to ${target}: ${errorText(error)}`, { cause: error });
    }
    committed();
    this.#handingOver = true;
    const exitCode = this.#options.handover.restartExitCode ?? EXIT_RESTART;
    this.#handoff = Promise.resolve(exitCode);
    this.#log.info({ op: LOG_OP, current, target, supervisor, exitCode }, `${target} installed; restart pending (stopping ${current}); exiting with ${exitCode} so that ${supervisor} starts ${target}`);
    try {
      await this.#options.handover.stopCurrent();
    } catch (error) {
      this.#log.error({ op: LOG_OP, err: error }, `stopping ${current} for the update failed: ${errorText(error)}; exiting for the restart regardless`);
    }
    return { kind: 'restart_requested', target, supervisor, exitCode };
  }

  /**
   * The new version is installed and switched in. Stop this daemon, start the new one, and wait for
   * it to report healthy; otherwise switch back, remember the version as bad, and start this one
   * again. The gate is never given back: this daemon does not take jobs any more.
   */
  async #handOver(installed: InstalledVersion, previous: CurrentPointer | null): Promise<UpdateOutcome> {
    this.#handingOver = true;
    let settle!: (code: number) => void;
    this.#handoff = new Promise((resolve) => (settle = resolve));
    const { handover } = this.#options;
    const current = this.#current.text;
    const target = installed.version;
    this.#log.info({ op: LOG_OP, current, target, entry: installed.entry }, `${target} installed; restart pending (stopping ${current})`);
    try {
      await handover.stopCurrent();
    } catch (error) {
      this.#log.error({ op: LOG_OP, err: error }, `stopping ${current} for the update failed: ${errorText(error)}; starting ${target} regardless`);
    }

    const successor = await this.#launch(installed.entry, target, { [UPDATED_FROM_ENV]: current });
    if (successor.health.healthy) {
      successor.process.detach();
      this.#log.info({ op: LOG_OP, current, target, pid: successor.process.pid }, `${target} is running (pid ${successor.process.pid ?? '?'}); handing over`);
      await this.#prune([target, current]);
      settle(0);
      return { kind: 'handed_over', target, pid: successor.process.pid };
    }

    const reason = successor.health.reason;
    this.#log.error({ op: LOG_OP, current, target, reason }, `update failed: ${target} ${reason}; rolling back to ${current}`);
    await successor.process.stop();
    this.#knownBad.add(target);
    try {
      await this.#options.installer.restore(previous);
    } catch (error) {
      this.#log.error({ op: LOG_OP, err: error }, `switching back to ${current} failed: ${errorText(error)}`);
    }
    try {
      await this.#options.badVersions.record(target, reason);
    } catch (error) {
      this.#log.error({ op: LOG_OP, err: error }, `recording ${target} as bad failed: ${errorText(error)}; the restarted ${current} still skips it (${ROLLED_BACK_FROM_ENV})`);
    }
    const old = await this.#launch(handover.previousEntry, current, { [ROLLED_BACK_FROM_ENV]: target });
    if (old.health.healthy) {
      old.process.detach();
      this.#log.warn({ op: LOG_OP, current, target, pid: old.process.pid }, `rolled back to ${current} (pid ${old.process.pid ?? '?'}); ${target} will not be tried again`);
      settle(0);
      return { kind: 'rolled_back', target, reason, restarted: true };
    }
    await old.process.stop();
    this.#log.error({ op: LOG_OP, current, reason: old.health.reason }, `rolled back to ${current}, but it ${old.health.reason} either; start studio-worker by hand and check its log`);
    settle(1);
    return { kind: 'rolled_back', target, reason, restarted: false };
  }

  async #launch(entry: string, version: string, env: Record<string, string>): Promise<{ process: Successor; health: Awaited<ReturnType<typeof waitUntilHealthy>> }> {
    const { handover } = this.#options;
    await clearStartup(handover.configDir);
    const process = handover.launcher.start(entry, env);
    const health = await waitUntilHealthy({
      configDir: handover.configDir,
      version,
      successor: process,
      timeoutMs: handover.healthTimeoutMs ?? 90_000,
      settleMs: handover.settleMs ?? 5_000,
      ...(handover.pollMs ? { pollMs: handover.pollMs } : {}),
    });
    return { process, health };
  }

  async #prune(keep: string[]): Promise<void> {
    try {
      const removed = await this.#options.installer.prune(keep);
      if (removed.length > 0) this.#log.info({ op: LOG_OP, removed }, `removed old versions: ${removed.join(', ')}`);
    } catch (error) {
      this.#log.warn({ op: LOG_OP, err: error }, `removing old versions failed: ${errorText(error)}`);
    }
  }
}

function asUpdateError(error: unknown): UpdateError {
  if (error instanceof UpdateError) return error;
  return new UpdateError('local_io', errorText(error), { cause: error });
}
