import { httpApiBase, type WorkerCapabilities } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { withoutFields, type ConfigStore } from '../config/index.ts';
import { reconnectDelayMs } from '../session/backoff.ts';
import { sleep, untilAborted } from '../platform/sleep.ts';
import { createRegisterRequest, pollRegisterRequest } from '../studio-api/index.ts';
import { hashRegistrationSecret, newInstallId, newRegistrationSecret } from './credentials.ts';
import { RESET_HINT, type RegistrationState } from './state.ts';

export interface RegistrarOptions {
  store: ConfigStore;
  userAgent: string;
  /** The capability snapshot sent with the request (what the operator sees before approving). */
  capabilities: () => WorkerCapabilities;
  log: Logger;
  /** `register --reset` as typed where this worker runs (with its --config); default the plain command. */
  resetCommand?: string;
  /** Called on every state change (the daemon writes state.json). */
  onState?: (state: RegistrationState) => void;
  now?: () => Date;
}

/** How often a fresh request is polled: an operator approving it from the dashboard sees it connect at once. */
export const REGISTRATION_FAST_POLL_MS = 1_000;
/** How long the fast polling lasts before it backs off towards `registration_poll_ms`. */
export const REGISTRATION_FAST_PHASE_MS = 10 * 60_000;

/**
 * The wait before the next registration poll, `waitingMs` into the wait: 1 s for the first ten
 * minutes (someone is likely at the dashboard), then doubling each further minute up to
 * `registration_poll_ms` (default 30 s), so a request nobody looks at costs the studio little.
 * A configured interval below 1 s (tests) is used as it is.
 */
export function registrationPollDelayMs(waitingMs: number, configuredMs: number): number {
  if (configuredMs <= REGISTRATION_FAST_POLL_MS || waitingMs < REGISTRATION_FAST_PHASE_MS) return Math.min(configuredMs, REGISTRATION_FAST_POLL_MS);
  return reconnectDelayMs(Math.floor((waitingMs - REGISTRATION_FAST_PHASE_MS) / 60_000) + 2, REGISTRATION_FAST_POLL_MS, configuredMs);
}

/**
 * Auto-registration with operator approval (original-spec §3.1): an install id and a secret are
 * minted locally, a request carrying only the secret's hash goes to the studio, and the worker polls
 * until the operator approves (credentials saved) or rejects (the worker waits for a reset).
 */
export class Registrar {
  readonly #options: RegistrarOptions;
  #state: RegistrationState;
  /** Failed round trips in a row (the request or the poll): they back off instead of polling fast. */
  #failures = 0;

  constructor(options: RegistrarOptions) {
    this.#options = options;
    this.#state = this.#stateFromConfig();
  }

  get state(): RegistrationState {
    return this.#state;
  }

  /**
   * Registration until approved, or until `stop`. A rejection keeps the process alive (a supervisor
   * restarting it would only send the request again) and waits for `stop`.
   */
  async untilApproved(stop: AbortSignal): Promise<'approved' | 'stopped'> {
    const waitingSince = performance.now();
    while (!stop.aborted) {
      const state = await this.tick();
      if (state.state === 'approved') return 'approved';
      if (state.state === 'rejected') {
        await untilAborted(stop);
        return 'stopped';
      }
      const configuredMs = this.#options.store.current.advanced.registrationPollMs;
      // A studio that fails (down, rate limiting) is asked again with backoff, not every second.
      const delayMs = this.#failures > 0 ? reconnectDelayMs(this.#failures, Math.min(configuredMs, REGISTRATION_FAST_POLL_MS), configuredMs) : registrationPollDelayMs(performance.now() - waitingSince, configuredMs);
      await sleep(delayMs, stop);
    }
    return 'stopped';
  }

  /** One step; at most one HTTP round trip. */
  async tick(): Promise<RegistrationState> {
    const { store, log } = this.#options;
    let config = store.current;
    if (config.workerId && config.authToken) return this.#set({ state: 'approved' });
    if (this.#state.state === 'rejected') return this.#state;

    if (!config.installId || (!config.registrationRequestId && !config.registrationSecret) || (config.registrationRequestId && !config.registrationSecret)) {
      config = await store.update(
        (current) => {
          const next = { ...current, installId: current.installId ?? newInstallId() };
          if (!next.registrationSecret) {
            // A request id without its secret can never be polled; start that request over.
            delete next.registrationRequestId;
            next.registrationSecret = newRegistrationSecret();
          }
          return next;
        },
        'registration: new install id / secret',
      );
      log.info({ op: 'registration', installId: config.installId }, 'registration credentials created');
    }

    const client = { apiBase: httpApiBase(config.apiBaseUrl), userAgent: this.#options.userAgent };
    const secret = config.registrationSecret ?? '';
    if (!config.registrationRequestId) {
      const body = {
        installId: config.installId ?? '',
        registrationSecretHash: hashRegistrationSecret(secret),
        capabilities: this.#options.capabilities(),
        userAgent: this.#options.userAgent,
        ...(config.label ? { label: config.label } : {}),
      };
      const created = await createRegisterRequest(client, body, config.pool);
      if (created.kind === 'error') {
        this.#failures++;
        log.warn(
          { op: 'registration', status: created.status, apiBase: client.apiBase },
          `registration request failed: ${created.status ?? 'no answer'} — ${created.message}; retrying`,
        );
        return this.#set({ state: 'pristine' });
      }
      this.#failures = 0;
      await store.update((current) => ({ ...current, registrationRequestId: created.requestId }), 'registration: request sent');
      log.info(
        { op: 'registration', requestId: created.requestId, installId: config.installId },
        `registration request ${created.requestId} sent; approve this worker in the studio dashboard`,
      );
      return this.#set({ state: 'pending', requestId: created.requestId, since: this.#sinceFor(created.requestId) });
    }

    const requestId = config.registrationRequestId;
    const poll = await pollRegisterRequest(client, requestId, secret);
    this.#failures = poll.kind === 'error' ? this.#failures + 1 : 0;
    switch (poll.kind) {
      case 'pending':
        return this.#set({ state: 'pending', requestId, since: this.#sinceFor(requestId) });
      case 'approved':
        await store.update(
          (current) => ({ ...withoutFields(current, ['registrationRequestId', 'registrationSecret']), workerId: poll.workerId, authToken: poll.authToken }),
          'registration: approved',
        );
        log.info({ op: 'registration', requestId, workerId: poll.workerId }, `approved as ${poll.workerId}`);
        return this.#set({ state: 'approved' });
      case 'rejected':
        await store.update((current) => withoutFields(current, ['registrationRequestId', 'registrationSecret']), 'registration: rejected');
        log.error(
          { op: 'registration', requestId, reason: poll.reason },
          `the studio operator rejected this worker${poll.reason ? `: ${poll.reason}` : ''}. To ask again, run \`${this.#options.resetCommand ?? RESET_HINT}\` and restart the daemon`,
        );
        return this.#set({ state: 'rejected', reason: poll.reason });
      case 'stale':
        await store.update((current) => withoutFields(current, ['registrationRequestId', 'registrationSecret']), 'registration: stale request');
        log.warn(
          { op: 'registration', requestId, status: poll.status },
          `the studio no longer knows registration request ${requestId} (${poll.status} — ${poll.message}); sending a new request`,
        );
        return this.#set({ state: 'pristine' });
      case 'error':
        log.warn(
          { op: 'registration', requestId, status: poll.status },
          `registration poll failed: ${poll.status ?? 'no answer'} — ${poll.message}; retrying`,
        );
        return this.#set({ state: 'pending', requestId, since: this.#sinceFor(requestId) });
    }
  }

  #stateFromConfig(): RegistrationState {
    const config = this.#options.store.current;
    if (config.workerId && config.authToken) return { state: 'approved' };
    if (config.registrationRequestId && config.registrationSecret) {
      return { state: 'pending', requestId: config.registrationRequestId, since: this.#now().toISOString() };
    }
    return { state: 'pristine' };
  }

  /** `since` is the first sighting of this request, kept across polls (original 0.4.9 #119). */
  #sinceFor(requestId: string): string {
    if (this.#state.state === 'pending' && this.#state.requestId === requestId && this.#state.since) return this.#state.since;
    return this.#now().toISOString();
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  #set(state: RegistrationState): RegistrationState {
    const changed = JSON.stringify(state) !== JSON.stringify(this.#state);
    this.#state = state;
    if (changed) this.#options.onState?.(state);
    return state;
  }
}
