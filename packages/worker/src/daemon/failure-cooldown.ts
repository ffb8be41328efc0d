import type { FailCode } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { OutboxPayload } from '../runner/index.ts';

/** Failed jobs in a row that make the worker pause itself (peer-lessons: reGen, 3 failures → 180 s). */
export const FAILURES_BEFORE_COOLDOWN = 3;
/** The longest last-error text kept for the reject reason, the log and state.json. */
const MAX_ERROR_CHARS = 300;

/**
 * Outcomes that say nothing about the engine's health: the studio cancelled, the worker shut down,
 * or the upload (not the engine) gave up. Rejected offers never get this far.
 */
const NEUTRAL_FAIL_CODES: ReadonlySet<FailCode> = new Set<FailCode>(['cancelled', 'handed_back', 'upload_failed']);

export type OutcomeClass = 'success' | 'failure' | 'neutral';

export function classifyOutcome(outcome: OutboxPayload): OutcomeClass {
  if (outcome.kind !== 'fail') return 'success';
  return NEUTRAL_FAIL_CODES.has(outcome.code) ? 'neutral' : 'failure';
}

/** The cooldown as state.json shows it. */
export interface CooldownSnapshot {
  consecutiveFailures: number;
  /** ISO time; present only while the worker pauses itself. */
  cooldownUntil?: string;
  /** How many failures in a row started the current cooldown. */
  cooldownAfterFailures?: number;
  /** `<code>: <message>` of the latest failure in the current streak. */
  lastFailure?: string;
}

export interface FailureCooldownOptions {
  /** `failure_cooldown_secs` in ms, read when a cooldown starts; 0 never pauses. */
  cooldownMs: () => number;
  log: Logger;
  /** The cooldown started or ended, or the streak changed. */
  onChange: () => void;
  threshold?: number;
}

/**
 * Self-protection: after `threshold` failed jobs in a row the worker stops taking offers for a
 * while, so a broken engine or model does not burn through the studio's queue one attempt at a
 * time. A successful job resets the streak (an active cooldown still runs to its announced end).
 * Once a streak has reached the threshold, every further failure without a success in between
 * starts another cooldown.
 */
export class FailureCooldown {
  readonly #options: FailureCooldownOptions;
  readonly #threshold: number;
  #streak = 0;
  #lastFailure: string | undefined;
  #until = 0;
  /** Set when a cooldown starts and cleared by its timer, so every view of it flips at one moment. */
  #cooling = false;
  #trippedAfter = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: FailureCooldownOptions) {
    this.#options = options;
    this.#threshold = options.threshold ?? FAILURES_BEFORE_COOLDOWN;
  }

  get active(): boolean {
    return this.#cooling;
  }

  /** A job's engine part ended with this outcome. */
  record(job: { jobId: string; attempt: number }, outcome: OutboxPayload): void {
    const outcomeClass = classifyOutcome(outcome);
    if (outcomeClass === 'neutral') return;
    const { log, onChange } = this.#options;
    if (outcomeClass === 'success') {
      if (this.#streak === 0) return;
      log.info({ op: 'cooldown', jobId: job.jobId, attempt: job.attempt, consecutiveFailures: 0 }, `job ${job.jobId} succeeded; the failure count is back to 0`);
      this.#streak = 0;
      this.#lastFailure = undefined;
      onChange();
      return;
    }
    if (outcome.kind !== 'fail') return;
    this.#streak++;
    this.#lastFailure = truncate(`${outcome.code}: ${outcome.error}`);
    const cooldownMs = this.#options.cooldownMs();
    if (this.#streak >= this.#threshold && cooldownMs > 0) this.#begin(cooldownMs);
    onChange();
  }

  /** Why offers are refused right now, or null. */
  holdBack(): string | null {
    if (!this.active) return null;
    const secondsLeft = Math.max(1, Math.ceil((this.#until - Date.now()) / 1000));
    return `worker paused itself after ${this.#trippedAfter} failed jobs in a row, until ${new Date(this.#until).toISOString()} (${secondsLeft} s from now; failure_cooldown_secs); last error: ${this.#lastFailure ?? 'unknown'}`;
  }

  snapshot(): CooldownSnapshot {
    const snapshot: CooldownSnapshot = { consecutiveFailures: this.#streak };
    if (this.active) {
      snapshot.cooldownUntil = new Date(this.#until).toISOString();
      snapshot.cooldownAfterFailures = this.#trippedAfter;
    }
    if (this.#lastFailure !== undefined) snapshot.lastFailure = this.#lastFailure;
    return snapshot;
  }

  /** Stop the end-of-cooldown timer (shutdown). */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #begin(cooldownMs: number): void {
    this.close();
    this.#until = Date.now() + cooldownMs;
    this.#cooling = true;
    this.#trippedAfter = this.#streak;
    const seconds = Math.round(cooldownMs / 100) / 10;
    this.#options.log.warn(
      { op: 'cooldown', consecutiveFailures: this.#streak, cooldownUntil: new Date(this.#until).toISOString(), cooldownSecs: seconds, lastFailure: this.#lastFailure },
      `${this.#streak} failed jobs in a row; not taking offers for ${seconds} s (until ${new Date(this.#until).toISOString()}). Last error: ${this.#lastFailure}. Check the engine and its models; failure_cooldown_secs sets the pause (0 turns it off)`,
    );
    this.#timer = setTimeout(() => this.#end(), cooldownMs);
    this.#timer.unref();
  }

  #end(): void {
    this.#timer = undefined;
    this.#cooling = false;
    this.#options.log.info({ op: 'cooldown', consecutiveFailures: this.#streak }, 'cooldown over; taking offers again');
    this.#options.onChange();
  }
}

function truncate(text: string): string {
  return text.length <= MAX_ERROR_CHARS ? text : `${text.slice(0, MAX_ERROR_CHARS - 1)}…`;
}
