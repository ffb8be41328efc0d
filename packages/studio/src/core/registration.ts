import { poolId, type AutoRegisterRequest, type PendingRequestView, type RegistrationPoll } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { Dispatcher } from './dispatcher.ts';
import type { PoolOption } from './jobs.ts';
import type { Ports } from './ports.ts';
import { fail, ok, timingSafeEqualText, type Result } from './result.ts';
import type { Stores } from './stores.ts';
import { pendingView } from './views.ts';

export interface RegistrationOptions extends PoolOption {
  /** A pending request older than this is deleted; the worker's poll gets 404 and it asks again. */
  pendingTtlMs: number;
  /** Largest `capabilities` (as JSON) a stranger may ask us to store and show. */
  maxCapabilitiesBytes: number;
  /** Requests waiting for approval from one source address (machines behind one NAT share it). */
  maxPendingPerAddress: number;
  /** Requests waiting for approval in all. */
  maxPendingTotal: number;
}

/** Longest string and longest list inside a registration's capabilities. */
const CAPS_MAX_STRING = 1_000;
const CAPS_MAX_ARRAY = 1_000;

/**
 * Auto-registration with operator approval (original-spec §3.1). Workers never share a secret: each
 * install proves itself with the secret whose SHA-256 it sent. Approval creates the worker; the
 * next poll mints its token (stored only as a hash), and every later poll rotates it, so a worker
 * can always fetch working credentials again.
 */
export class Registration {
  private readonly ports: Ports;
  private readonly stores: Stores;
  private readonly dispatcher: Dispatcher;
  private readonly opts: RegistrationOptions;
  private readonly log: Logger;

  constructor(ports: Ports, stores: Stores, dispatcher: Dispatcher, opts: RegistrationOptions, log: Logger) {
    this.ports = ports;
    this.stores = stores;
    this.dispatcher = dispatcher;
    this.opts = opts;
    this.log = log;
  }

  /**
   * POST /workers/register-request: unauthenticated, so everything a stranger can make us store is
   * bounded: the capabilities' size, the requests waiting per address and in all (the host also
   * rate-limits the route). Expired and superseded requests are deleted, not kept.
   */
  request(body: AutoRegisterRequest, sourceIp: string, userAgent: string): Result<{ requestId: string; status: 'pending' }> {
    const { sql, crypto } = this.ports;
    const now = this.ports.clock.now();
    const capabilities = JSON.stringify(body.capabilities);
    const tooBig = capabilitiesProblem(body.capabilities, capabilities, this.opts.maxCapabilitiesBytes);
    if (tooBig) return fail(413, 'capabilities_too_large', tooBig);
    const requests = this.stores.registrations;
    const removed: string[] = [];
    const result = sql.transaction((): Result<{ requestId: string; created: boolean }> => {
      removed.push(...requests.deletePendingUntil(now - this.opts.pendingTtlMs));
      const existing = requests.latestPendingOf(body.installId);
      if (existing && existing.secret_hash === body.registrationSecretHash) return ok({ requestId: existing.id, created: false });
      const fromAddress = requests.pendingCountBesides(body.installId, sourceIp);
      if (fromAddress >= this.opts.maxPendingPerAddress) {
        return fail(429, 'too_many_pending', `${fromAddress} registration requests from ${sourceIp} already wait for approval; ask the operator to approve or reject them first`);
      }
      const total = requests.pendingCountBesides(body.installId);
      if (total >= this.opts.maxPendingTotal) {
        return fail(429, 'too_many_pending', `${total} registration requests already wait for approval; ask the operator to approve or reject them first`);
      }
      // Same install with a new secret (it lost the old one): the old request can never be polled
      // again, so it goes rather than leave the operator two entries for one machine.
      removed.push(...requests.deletePendingOf(body.installId));
      const requestId = poolId(this.opts.pool, `rr-${crypto.randomHex(12)}`);
      requests.insertPending({
        id: requestId,
        installId: body.installId,
        secretHash: body.registrationSecretHash,
        capabilities,
        label: body.label ?? null,
        sourceIp,
        // The body's userAgent ("studio-worker/<version>") identifies the worker; the header is
        // only its HTTP client's (original-spec §3.1), so it is the fallback.
        userAgent: (body.userAgent || userAgent).slice(0, 200),
        now,
      });
      return ok({ requestId, created: true });
    });
    for (const id of removed) this.publishRemoved(id);
    if (!result.ok) {
      this.log.warn({ op: 'registration', sourceIp, code: result.error.code }, result.error.message);
      return result;
    }
    if (result.value.created) {
      this.log.info(
        { op: 'registration', requestId: result.value.requestId, machine: body.capabilities.machineName.slice(0, 100), sourceIp },
        'new registration request waits for approval',
      );
      this.publishAdded(result.value.requestId);
    }
    return ok({ requestId: result.value.requestId, status: 'pending' });
  }

  /** GET /workers/register-requests/:id with the raw secret as bearer. */
  poll(requestId: string, bearerSecret: string | undefined): Result<RegistrationPoll> {
    const { crypto } = this.ports;
    const now = this.ports.clock.now();
    const row = this.stores.registrations.get(requestId);
    const expired = row && row.status === 'pending' && row.requested_at <= now - this.opts.pendingTtlMs;
    if (!row || row.status === 'superseded' || expired) {
      return fail(404, 'unknown_request', `registration request ${requestId} is unknown or expired; send a new register-request`);
    }
    if (!bearerSecret || !timingSafeEqualText(crypto.sha256Hex(bearerSecret), row.secret_hash)) {
      return fail(401, 'bad_secret', 'the bearer token is not the registration secret of this request');
    }
    if (row.status === 'pending') return ok({ status: 'pending' });
    if (row.status === 'rejected') return ok({ status: 'rejected', reason: row.rejection_reason ?? '' });
    const workerId = row.worker_id ?? '';
    const worker = this.stores.workers.get(workerId);
    if (!worker || worker.deleted_at !== null) {
      return fail(404, 'unknown_request', `worker ${workerId} approved by request ${requestId} was deleted; send a new register-request`);
    }
    const authToken = crypto.randomHex(32);
    this.stores.workers.setTokenHash(workerId, crypto.sha256Hex(authToken));
    this.log.info({ op: 'registration', requestId, workerId }, 'issued a worker token');
    return ok({ status: 'approved', workerId, authToken });
  }

  pending(): PendingRequestView[] {
    return this.stores.registrations.pendingAfter(this.ports.clock.now() - this.opts.pendingTtlMs).map(pendingView);
  }

  approve(requestId: string, label: string | undefined): Result<{ workerId: string }> {
    const { sql, crypto } = this.ports;
    const now = this.ports.clock.now();
    const outcome = sql.transaction((): Result<{ workerId: string }> => {
      const row = this.stores.registrations.get(requestId);
      if (!row || row.status === 'superseded') return fail(404, 'unknown_request', `registration request ${requestId} does not exist`);
      if (row.status !== 'pending') return fail(409, 'already_decided', `registration request ${requestId} was already ${row.status}`);
      const caps = JSON.parse(row.capabilities) as { machineName?: string };
      const workerId = poolId(this.opts.pool, `w-${crypto.randomHex(6)}`);
      this.stores.workers.create({
        id: workerId,
        label: label ?? row.label ?? caps.machineName ?? workerId,
        machineName: caps.machineName ?? '',
        installId: row.install_id,
        capabilities: row.capabilities,
        tokenHash: null,
        now,
      });
      this.stores.registrations.markApproved(requestId, workerId, now);
      return ok({ workerId });
    });
    if (outcome.ok) {
      this.log.info({ op: 'registration', requestId, workerId: outcome.value.workerId }, 'registration approved');
      this.publishRemoved(requestId);
      this.dispatcher.publishWorker(outcome.value.workerId);
    }
    return outcome;
  }

  reject(requestId: string, reason: string): Result<{ requestId: string }> {
    const row = this.stores.registrations.get(requestId);
    if (!row || row.status === 'superseded') return fail(404, 'unknown_request', `registration request ${requestId} does not exist`);
    if (row.status !== 'pending') return fail(409, 'already_decided', `registration request ${requestId} was already ${row.status}`);
    this.stores.registrations.markRejected(requestId, reason, this.ports.clock.now());
    this.log.info({ op: 'registration', requestId, reason }, 'registration rejected');
    this.publishRemoved(requestId);
    return ok({ requestId });
  }

  /**
   * A worker the operator creates directly (the all-in-one launcher's local worker: the same
   * operator started both, so no approval round trip). Answers the raw token once.
   */
  createApprovedWorker(label: string, machineName: string): { workerId: string; authToken: string } {
    const { crypto } = this.ports;
    const workerId = poolId(this.opts.pool, `w-${crypto.randomHex(6)}`);
    const authToken = crypto.randomHex(32);
    this.stores.workers.create({
      id: workerId,
      label,
      machineName,
      installId: null,
      capabilities: null,
      tokenHash: crypto.sha256Hex(authToken),
      now: this.ports.clock.now(),
    });
    this.log.info({ op: 'registration', workerId, label }, 'created a pre-approved worker');
    return { workerId, authToken };
  }

  /** Give an existing worker a new token (the raw token is answered once). */
  rotateToken(workerId: string): Result<{ workerId: string; authToken: string }> {
    const worker = this.stores.workers.get(workerId);
    if (!worker || worker.deleted_at !== null) return fail(404, 'unknown_worker', `worker ${workerId} does not exist`);
    const authToken = this.ports.crypto.randomHex(32);
    this.stores.workers.setTokenHash(workerId, this.ports.crypto.sha256Hex(authToken));
    return ok({ workerId, authToken });
  }

  /** Dashboards get each change of the pending list on its own, never the whole list again. */
  private publishAdded(requestId: string): void {
    if (!this.ports.events.enabled) return;
    const row = this.stores.registrations.get(requestId);
    if (row) this.ports.events.publish({ type: 'pendingAdded', request: pendingView(row) });
  }

  private publishRemoved(requestId: string): void {
    if (this.ports.events.enabled) this.ports.events.publish({ type: 'pendingRemoved', requestId });
  }
}

/** Why these capabilities are too much to store, or undefined when they are fine. */
function capabilitiesProblem(capabilities: unknown, json: string, maxBytes: number): string | undefined {
  const bytes = new TextEncoder().encode(json).length;
  if (bytes > maxBytes) return `the capabilities are ${bytes} bytes; a registration request may carry at most ${maxBytes}`;
  const stack: Array<{ value: unknown; path: string }> = [{ value: capabilities, path: 'capabilities' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: string };
    if (typeof value === 'string' && value.length > CAPS_MAX_STRING) return `${path} is ${value.length} characters long; at most ${CAPS_MAX_STRING}`;
    if (Array.isArray(value)) {
      if (value.length > CAPS_MAX_ARRAY) return `${path} lists ${value.length} entries; at most ${CAPS_MAX_ARRAY}`;
      value.forEach((item, i) => stack.push({ value: item, path: `${path}[${i}]` }));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) stack.push({ value: item, path: `${path}.${key}` });
    }
  }
  return undefined;
}
