import { enginesByKind, isOriginalEngine, type WorkerCapabilities } from '@studio-worker/protocol';
import { z } from 'zod';

/** A claim a session holds. `released`: the studio already ended it (cancel, lease) but the worker may still run it. */
export interface HeldClaim {
  attempt: number;
  released: boolean;
  /**
   * The worker said (progress phase `uploading`) that its engine is done with this job and only the
   * result's upload is left. A prefetching worker's engine slot is then free for the next job.
   */
  uploading?: boolean;
}

/**
 * One worker socket as the dispatcher sees it. Plain data (no sockets), so a Durable Object host can
 * keep it in a WebSocket attachment across hibernation.
 */
export interface Session {
  connId: string;
  workerId: string;
  /** Hello verified and welcome sent. */
  welcomed: boolean;
  closed: boolean;
  connectedAt: number;
  lastHeartbeatAt: number;
  capabilities: WorkerCapabilities | undefined;
  /** Last capabilities JSON written to the database, to skip identical writes. */
  storedCapabilities: string | undefined;
  features: Set<string>;
  /** "kind engine" pairs this worker serves (strict routing). */
  kindEngines: string[];
  kindEngineSet: Set<string>;
  /** Offers it may hold at once: 1 + prefetch slots. */
  slots: number;
  held: Map<string, HeldClaim>;
  /** After a busy/paused refusal: no offers before this time (a heartbeat clears it). */
  holdUntil: number;
  /** Jobs this worker refused as unsupported, until when. */
  skip: Map<string, number>;
  cooldownUntil: number;
  violations: number;
}

export function newSession(connId: string, workerId: string, now: number): Session {
  return {
    connId,
    workerId,
    welcomed: false,
    closed: false,
    connectedAt: now,
    lastHeartbeatAt: now,
    capabilities: undefined,
    storedCapabilities: undefined,
    features: new Set(),
    kindEngines: [],
    kindEngineSet: new Set(),
    slots: 1,
    held: new Map(),
    holdUntil: 0,
    skip: new Map(),
    cooldownUntil: 0,
    violations: 0,
  };
}

export function applyCapabilities(session: Session, caps: WorkerCapabilities): void {
  session.capabilities = caps;
  session.features = new Set(caps.protocolFeatures ?? []);
  // A peer without extended-offers (the original) is never offered an engine its parser does not know.
  const extended = session.features.has('extended-offers');
  const pairs: string[] = [];
  for (const [kind, engines] of enginesByKind(caps)) for (const engine of engines) if (extended || isOriginalEngine(engine)) pairs.push(`${kind} ${engine}`);
  session.kindEngines = pairs;
  session.kindEngineSet = new Set(pairs);
  session.slots = 1 + (session.features.has('prefetch') ? Math.min(caps.prefetchSlots ?? 0, 1) : 0);
}

/** Claims the worker is still working on, whether or not the studio still counts them. */
export function activeClaims(session: Session): number {
  return session.held.size;
}

/**
 * Results a prefetching worker may have on their way up without holding an offer slot. Uploads
 * that take about as long as a job jitter around it (on a slow 2-core machine a 44 KB upload took
 * 19–86 ms beside 44 ms engine runs): with one free, every upload that ran long took the prefetch
 * slot and the engine waited (98.4–98.8 % busy in bench:busy); with two, 99.1–99.4 %. A third one
 * waiting means the uploads do not keep up (a slow or cut link), and a worker that took more jobs
 * then would pile up claims it cannot deliver.
 */
export const FREE_UPLOADS = 2;

/** Claims that occupy one of the worker's offer slots: all but FREE_UPLOADS that only upload their result. */
export function slotsInUse(session: Session): number {
  let used = 0;
  let uploading = 0;
  for (const claim of session.held.values()) {
    if (claim.uploading) uploading++;
    else used++;
  }
  return used + Math.max(0, uploading - FREE_UPLOADS);
}

/** Whether the session has a free offer slot (before pauses, holds and the rest; see canTakeOffers). */
export function hasFreeSlot(session: Session): boolean {
  return slotsInUse(session) < session.slots;
}

export interface JobTraits {
  id: string;
  kind: string;
  engine: string;
  vramGbEstimate: number;
  /** Protocol features the worker must announce (featuresNeededBy of the job's model source). */
  needs?: readonly string[];
}

/** Whether this session may be offered anything now (capacity, pause, holds, cooldown, presence). */
export function canTakeOffers(session: Session, now: number): boolean {
  const caps = session.capabilities;
  if (!session.welcomed || session.closed || !caps || !caps.autoEnabled) return false;
  if (!hasFreeSlot(session)) return false;
  if (now < session.holdUntil || now < session.cooldownUntil) return false;
  if (caps.onlyWhenIdle && caps.userPresence !== 'idle') return false;
  return true;
}

/** Whether this session may run this job (strict routing on engine, kind, VRAM, skip list). */
export function canRun(session: Session, job: JobTraits, now: number): boolean {
  if (!session.kindEngineSet.has(`${job.kind} ${job.engine}`)) return false;
  if (job.needs !== undefined && job.needs.some((feature) => !session.features.has(feature))) return false;
  if ((session.capabilities?.vramThresholdGb ?? 0) < job.vramGbEstimate) return false;
  const skipUntil = session.skip.get(job.id);
  return skipUntil === undefined || skipUntil <= now;
}

/** Job ids to leave out of this worker's next claim; expired entries are dropped on the way. */
export function skipList(session: Session, now: number): string[] {
  const out: string[] = [];
  for (const [jobId, until] of session.skip) {
    if (until <= now) session.skip.delete(jobId);
    else out.push(jobId);
  }
  return out;
}

/** Skip entries a snapshot keeps (see SessionSnapshot): a lost one costs one more refused offer. */
export const SNAPSHOT_MAX_SKIPS = 16;
/** Released claims a snapshot keeps: a worker holds one or two; more means it misbehaves. */
export const SNAPSHOT_MAX_RELEASED = 16;

/**
 * What of a session lives only in memory, for a host that loses its memory while the socket stays
 * open (a Durable Object evicted while its hibernatable WebSockets live on; the attachment holds
 * this, and `serializeAttachment` caps it at 2,048 bytes). Everything else comes back from SQL:
 * the capabilities and cooldown from the `workers` row, the held claims from the worker's
 * claimed/running `jobs` rows. Plain JSON (no Infinity, no Map), so JSON and structured clone
 * both carry it unchanged.
 */
export const SessionSnapshot = z.object({
  v: z.literal(1),
  conn: z.string().min(1),
  worker: z.string().min(1),
  welcomed: z.boolean(),
  connectedAt: z.number(),
  heartbeatAt: z.number(),
  holdUntil: z.number(),
  violations: z.number().int().nonnegative(),
  /** Jobs refused as unsupported: [jobId, until], until null = for good (an original peer cannot read it). */
  skip: z.array(z.tuple([z.string(), z.number().nullable()])).max(SNAPSHOT_MAX_SKIPS),
  /** Claims the studio already ended that the worker may still report: [jobId, attempt]. */
  released: z.array(z.tuple([z.string(), z.number().int()])).max(SNAPSHOT_MAX_RELEASED),
  /** Held claims whose worker said only the upload is left. */
  uploading: z.array(z.string()).max(SNAPSHOT_MAX_RELEASED),
});
export type SessionSnapshot = z.infer<typeof SessionSnapshot>;

export function snapshotOf(session: Session): SessionSnapshot {
  // The skips that matter longest first; the rest are dropped (the worker refuses them once more).
  const skip = [...session.skip]
    .sort((a, b) => b[1] - a[1])
    .slice(0, SNAPSHOT_MAX_SKIPS)
    .map(([jobId, until]): [string, number | null] => [jobId, Number.isFinite(until) ? until : null]);
  const released: Array<[string, number]> = [];
  const uploading: string[] = [];
  for (const [jobId, claim] of session.held) {
    if (claim.released && released.length < SNAPSHOT_MAX_RELEASED) released.push([jobId, claim.attempt]);
    else if (claim.uploading && uploading.length < SNAPSHOT_MAX_RELEASED) uploading.push(jobId);
  }
  return {
    v: 1,
    conn: session.connId,
    worker: session.workerId,
    welcomed: session.welcomed,
    connectedAt: session.connectedAt,
    heartbeatAt: session.lastHeartbeatAt,
    holdUntil: session.holdUntil,
    violations: session.violations,
    skip,
    released,
    uploading,
  };
}

/** Put an ordered set (oldest first by `at`) back in order, after restores added sessions in any order. */
export function sortSessions(set: Set<Session>, at: (s: Session) => number): void {
  const all = [...set].sort((a, b) => at(a) - at(b));
  set.clear();
  for (const s of all) set.add(s);
}
