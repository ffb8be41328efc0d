import { workerConnectUrl } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { AdvancedTimings } from '../config/index.ts';
import { reconnectDelayMs } from './backoff.ts';
import { connectStudio } from './connection.ts';
import { StudioSession, type SessionEnd, type SessionHost } from './session.ts';
import { sleep } from '../platform/sleep.ts';
import type { SessionState } from './state.ts';

export interface SupervisorOptions {
  log: Logger;
  userAgent: string;
  /** The current studio URL, credentials and limits (read fresh for every attempt). */
  target: () => { apiBaseUrl: string; workerId: string; authToken: string; reconnectCap: number; timings: AdvancedTimings };
  /** A session host for these credentials. */
  host: (workerId: string, authToken: string) => SessionHost;
  onState: (state: SessionState) => void;
}

/** Why the supervisor returned. */
export type SupervisorOutcome =
  /** The studio refused the token (401 upgrade, close 4001, `error{auth_failed}`): register again. */
  | { kind: 'reregister'; reason: string }
  /** Duplicate worker, deleted worker, or the reconnect cap: never connect again. */
  | { kind: 'fatal'; reason: string; displaced?: true }
  | { kind: 'stopped' };

/**
 * Keeps a session up (original-spec §3.2 reconnect policy): every ordinary disconnect reconnects
 * with backoff (1 s doubling to 30 s), forever unless `ws_reconnect_attempts` > 0; the attempt
 * counter resets once a session reached `welcome`, so only consecutive failures add up.
 */
export async function superviseSessions(options: SupervisorOptions, stop: AbortSignal): Promise<SupervisorOutcome> {
  const { log } = options;
  let attempt = 0;
  options.onState({ state: 'connecting' });
  while (!stop.aborted) {
    const target = options.target();
    const url = workerConnectUrl(target.apiBaseUrl, target.workerId);
    log.debug({ op: 'connect', url, attempt }, 'connecting to the studio');
    const connected = await connectStudio({
      url,
      authToken: target.authToken,
      timeoutMs: target.timings.connectTimeoutMs,
      userAgent: options.userAgent,
      signal: stop,
    });
    let end: SessionEnd;
    if (connected.ok) {
      const session = new StudioSession(connected.socket, options.host(target.workerId, target.authToken), {
        onWelcome: () => options.onState({ state: 'connected' }),
      });
      end = await session.run(stop);
    } else if (connected.kind === 'auth_failed') {
      end = { kind: 'auth_failed', reason: `the studio refused the token on connect (401${connected.body ? ` — ${connected.body}` : ''})`, welcomed: false };
    } else {
      end = { kind: 'disconnected', reason: connected.message, welcomed: false };
    }
    if (stop.aborted || end.kind === 'stopped') break;
    if (end.kind === 'auth_failed') {
      options.onState({ state: 'auth_failed', reason: end.reason });
      return { kind: 'reregister', reason: end.reason };
    }
    if (end.kind === 'fatal') {
      log.error({ op: 'session', reason: end.reason }, `stopped talking to the studio for good: ${end.reason}`);
      options.onState({ state: 'fatal', reason: end.reason });
      return { kind: 'fatal', reason: end.reason, ...(end.displaced ? { displaced: true as const } : {}) };
    }
    if (end.welcomed) attempt = 0;
    attempt++;
    if (target.reconnectCap > 0 && attempt > target.reconnectCap) {
      const reason = `gave up after ${target.reconnectCap} reconnect attempts (ws_reconnect_attempts); restart the daemon to try again, or set ws_reconnect_attempts = 0 to retry forever`;
      log.error({ op: 'reconnect', attempts: target.reconnectCap }, reason);
      options.onState({ state: 'fatal', reason });
      return { kind: 'fatal', reason };
    }
    const delayMs = reconnectDelayMs(attempt, target.timings.reconnectInitialMs, target.timings.reconnectMaxMs);
    log.warn({ op: 'reconnect', attempt, delayMs, reason: end.reason }, `disconnected (${end.reason}); reconnect attempt ${attempt} in ${delayMs} ms`);
    options.onState({ state: 'reconnecting', attempt });
    await sleep(delayMs, stop);
  }
  options.onState({ state: 'stopped' });
  return { kind: 'stopped' };
}
