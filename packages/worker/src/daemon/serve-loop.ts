import type { LogRoot } from '@studio-worker/log';
import type { WorkerCapabilities } from '@studio-worker/protocol';
import { withoutFields, type ConfigStore } from '../config/index.ts';
import { commandHint } from '../config/invocation.ts';
import { untilAborted } from '../platform/sleep.ts';
import { Registrar, type RegistrationState } from '../registration/index.ts';
import { superviseSessions, type SessionHost, type SessionState } from '../session/index.ts';
import { USER_AGENT } from '../platform/version.ts';

/** What `register --reset` clears; a registration reset through the local API clears the same. */
export const REGISTRATION_FIELDS = ['workerId', 'authToken', 'registrationRequestId', 'registrationSecret', 'installId'] as const;

export interface StudioLoopOptions {
  store: ConfigStore;
  logs: LogRoot;
  configPath: string;
  capabilities: () => WorkerCapabilities;
  /** The job runner's side of a session (runner/runtime.ts). */
  hostFor: (workerId: string, authToken: string) => SessionHost;
  /** Registration or session state changed (state.json, metrics). */
  onChange: () => void;
  onReconnect: () => void;
  /** A newer process holds this worker id (close 4003): the daemon stops for good. */
  onDisplaced: () => void;
}

/**
 * The serve loop: registration until the operator approves, then sessions (reconnecting), back to
 * registration when the studio refuses the token; until `stop` aborts. It owns the registration
 * and session state the status shows.
 */
export class StudioLoop {
  readonly #options: StudioLoopOptions;
  #registrar: Registrar;
  /** Aborted by a registration reset, to wake the registration wait after a rejection. */
  #registrationRestart = new AbortController();
  #session: SessionState = { state: 'waiting_for_approval' };
  #lastHeartbeat: string | undefined;

  constructor(options: StudioLoopOptions) {
    this.#options = options;
    this.#registrar = this.#newRegistrar();
  }

  get registration(): RegistrationState {
    return this.#registrar.state;
  }

  get session(): SessionState {
    return this.#session;
  }

  /** When the last hello or heartbeat went out on the current session. */
  get lastHeartbeat(): string | undefined {
    return this.#lastHeartbeat;
  }

  setSession(state: SessionState): void {
    if (state.state === 'reconnecting') this.#options.onReconnect();
    if (state.state !== 'connected') this.#lastHeartbeat = undefined;
    this.#session = state;
    this.#options.onChange();
  }

  /**
   * A fresh registration after the operator rejected this worker (what `register --reset` and a
   * restart do): the credentials and the request are forgotten and a new request goes out.
   */
  async resetRegistration(log: { info(fields: object, message: string): void }): Promise<boolean> {
    if (this.#registrar.state.state !== 'rejected') return false;
    await this.#options.store.update((current) => withoutFields(current, REGISTRATION_FIELDS), 'registration reset through the local API');
    log.info({ op: 'registration' }, 'registration reset by the operator; sending a new registration request');
    this.#registrar = this.#newRegistrar();
    this.#registrationRestart.abort();
    this.#options.onChange();
    return true;
  }

  /** Registration, then sessions; back to registration when the studio refuses the token. */
  async run(stop: AbortSignal): Promise<void> {
    const { store, logs } = this.#options;
    const log = logs.child('daemon');
    while (!stop.aborted) {
      const config = store.current;
      if (!config.workerId || !config.authToken) {
        this.setSession({ state: 'waiting_for_approval' });
        log.info({ op: 'registration' }, 'waiting for operator approval before opening the session');
        this.#registrationRestart = new AbortController();
        if ((await this.#registrar.untilApproved(AbortSignal.any([stop, this.#registrationRestart.signal]))) === 'stopped') {
          // A registration reset wakes the wait after a rejection: start over with the new request.
          if (stop.aborted) return;
          continue;
        }
      }
      const outcome = await superviseSessions(
        {
          log: logs.child('session'),
          userAgent: USER_AGENT,
          target: () => {
            const current = store.current;
            return {
              apiBaseUrl: current.apiBaseUrl,
              workerId: current.workerId ?? '',
              authToken: current.authToken ?? '',
              reconnectCap: current.wsReconnectAttempts,
              timings: current.advanced,
            };
          },
          host: (workerId, authToken) => {
            const host = this.#options.hostFor(workerId, authToken);
            // hello and every heartbeat take a fresh capability snapshot: that is when one went out.
            return {
              ...host,
              capabilities: () => {
                this.#lastHeartbeat = new Date().toISOString();
                return host.capabilities();
              },
            };
          },
          onState: (state) => this.setSession(state),
        },
        stop,
      );
      if (outcome.kind === 'stopped') return;
      if (outcome.kind === 'fatal') {
        if (outcome.displaced) {
          this.#options.onDisplaced();
          return;
        }
        // No more connection attempts; the process stays up so a supervisor does not restart the fight.
        await untilAborted(stop);
        return;
      }
      await store.update((current) => withoutFields(current, ['workerId', 'authToken']), 'auth failed: credentials cleared');
      log.error(
        { op: 'registration', reason: outcome.reason },
        `the studio refused this worker's token (${outcome.reason}); cleared the credentials and sending a new registration request — approve it in the studio dashboard`,
      );
      this.#registrar = this.#newRegistrar();
      this.#options.onChange();
    }
  }

  #newRegistrar(): Registrar {
    return new Registrar({
      store: this.#options.store,
      userAgent: USER_AGENT,
      capabilities: () => this.#options.capabilities(),
      log: this.#options.logs.child('registration'),
      resetCommand: commandHint(this.#options.configPath, 'register --reset'),
      onState: () => this.#options.onChange(),
    });
  }
}
