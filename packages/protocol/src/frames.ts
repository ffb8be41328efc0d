import { z } from 'zod';
import { WorkerCapabilities } from './capabilities.ts';
import { ErrorCode } from './errors.ts';
import { LogEntry } from './log-entry.ts';
import { ModelSource } from './model-source.ts';
import { optional } from './optional.ts';
import { Task } from './task.ts';

const JobId = z.string().min(1).max(200);
/** Claim generation of a job; grows every time the job is handed out again. Starts at 1. */
export const Attempt = z.number().int().positive();

/** A job the worker holds: running, or finished with its result still waiting to be acknowledged. */
export const InFlightJob = z.object({
  jobId: JobId,
  attempt: optional(Attempt),
  state: z.enum(['running', 'finished']),
});
export type InFlightJob = z.infer<typeof InFlightJob>;

// ---------------------------------------------------------------- worker → studio

export const HelloFrame = z.object({
  type: z.literal('hello'),
  authToken: z.string(),
  capabilities: WorkerCapabilities,
  /** resume: jobs this worker still holds from before the reconnect or restart. */
  inFlight: optional(z.array(InFlightJob)),
});

export const HeartbeatFrame = z.object({
  type: z.literal('heartbeat'),
  capabilities: WorkerCapabilities,
  /** The running studio job; omitted when idle. */
  currentJobId: optional(JobId),
  /** resume: every job this worker holds; renews their leases. */
  inFlight: optional(z.array(InFlightJob)),
});

export const AcceptFrame = z.object({
  type: z.literal('accept'),
  jobId: JobId,
  attempt: optional(Attempt),
});

export const REJECT_CODES = ['busy', 'paused', 'unsupported'] as const;
export const RejectCode = z.enum(REJECT_CODES);
export type RejectCode = z.infer<typeof RejectCode>;

export const RejectFrame = z.object({
  type: z.literal('reject'),
  jobId: JobId,
  reason: z.string(),
  /** Absent in the original's legacy shape. */
  code: optional(RejectCode),
  attempt: optional(Attempt),
});

export const PROGRESS_PHASES = ['queued', 'downloading', 'loading', 'generating', 'encoding', 'uploading'] as const;
export const ProgressPhase = z.enum(PROGRESS_PHASES);
export type ProgressPhase = z.infer<typeof ProgressPhase>;

/** progress feature: latest state of a running job. Droppable; the final state never depends on it. */
/** The largest live preview image a progress frame carries (decoded bytes). */
export const MAX_PREVIEW_BYTES = 64 * 1024;

export const ProgressFrame = z.object({
  type: z.literal('progress'),
  jobId: JobId,
  attempt: optional(Attempt),
  phase: ProgressPhase,
  step: optional(z.number().int().nonnegative()),
  total: optional(z.number().int().nonnegative()),
  /** 0..1 when known. */
  fraction: optional(z.number().min(0).max(1)),
  message: optional(z.string().max(500)),
  /**
   * Extension (feature `preview`): a small image of the generation so far, base64, at most
   * MAX_PREVIEW_BYTES before encoding; sent at most once a second, only to a studio listing `preview`.
   */
  preview: optional(z.object({ mime: z.enum(['image/jpeg', 'image/png', 'image/webp']), data: z.string().max(Math.ceil(MAX_PREVIEW_BYTES / 3) * 4) })),
});

export const CompleteJsonFrame = z.object({
  type: z.literal('completeJson'),
  jobId: JobId,
  result: z.unknown(),
  /** The full prompt (never a preview): for the original studio, which files results under it; this studio does not read it. */
  prompt: optional(z.string()),
  attempt: optional(Attempt),
});

/**
 * Why a job failed, beyond `retryable`. `handed_back`: the worker gives the job back unfinished
 * (shutdown, restart); it does not count against the attempt cap.
 */
export const FAIL_CODES = ['engine_error', 'engine_unavailable', 'bad_input', 'upload_failed', 'timeout', 'cancelled', 'handed_back'] as const;
export const FailCode = z.enum(FAIL_CODES);
export type FailCode = z.infer<typeof FailCode>;

export const FailFrame = z.object({
  type: z.literal('fail'),
  jobId: JobId,
  error: z.string(),
  retryable: z.boolean(),
  code: optional(FailCode),
  attempt: optional(Attempt),
});

/** Any number of entries; the studio keeps the first MAX_LOG_BATCH_ENTRIES and counts the rest. */
export const LogBatchFrame = z.object({
  type: z.literal('logBatch'),
  entries: z.array(LogEntry),
});

/** Defined by the original but never sent any more; accepted and ignored. */
export const ReadyForMoreFrame = z.object({ type: z.literal('readyForMore') });

export const WorkerFrame = z.discriminatedUnion('type', [
  HelloFrame,
  HeartbeatFrame,
  AcceptFrame,
  RejectFrame,
  ProgressFrame,
  CompleteJsonFrame,
  FailFrame,
  LogBatchFrame,
  ReadyForMoreFrame,
]);
export type WorkerFrame = z.infer<typeof WorkerFrame>;
export type HelloFrame = z.infer<typeof HelloFrame>;
export type HeartbeatFrame = z.infer<typeof HeartbeatFrame>;
export type AcceptFrame = z.infer<typeof AcceptFrame>;
export type RejectFrame = z.infer<typeof RejectFrame>;
export type ProgressFrame = z.infer<typeof ProgressFrame>;
export type CompleteJsonFrame = z.infer<typeof CompleteJsonFrame>;
export type FailFrame = z.infer<typeof FailFrame>;
export type LogBatchFrame = z.infer<typeof LogBatchFrame>;

// ---------------------------------------------------------------- studio → worker

export const WelcomeFrame = z.object({
  type: z.literal('welcome'),
  workerId: z.string(),
  serverTime: z.string(),
  /** Extensions this studio understands (see PROTOCOL_FEATURES). */
  protocolFeatures: optional(z.array(z.string())),
  /** How long a claim lives without a heartbeat. */
  leaseSeconds: optional(z.number().positive()),
});

export const JobOfferClaim = z.object({
  jobId: JobId,
  gameId: z.string().default(''),
  assetName: z.string().default(''),
  model: z.string(),
  vramGbEstimate: z.number().nonnegative().default(0),
  task: Task,
  modelSource: ModelSource,
  /** Always sent by our studio; absent from the original's offers. */
  attempt: optional(Attempt),
});
export type JobOfferClaim = z.infer<typeof JobOfferClaim>;

export const OfferFrame = z.object({
  type: z.literal('offer'),
  claim: JobOfferClaim,
});

export const HeartbeatAckFrame = z.object({ type: z.literal('heartbeatAck') });

export const CompleteAckFrame = z.object({
  type: z.literal('completeAck'),
  jobId: JobId,
  attempt: optional(Attempt),
});

export const FailAckFrame = z.object({
  type: z.literal('failAck'),
  jobId: JobId,
  attempt: optional(Attempt),
});

/** cancel feature: stop this job now; the studio already ended it. */
export const CancelFrame = z.object({
  type: z.literal('cancel'),
  jobId: JobId,
  attempt: optional(Attempt),
  reason: optional(z.string()),
});

export const ErrorFrame = z.object({
  type: z.literal('error'),
  code: ErrorCode,
  message: z.string(),
  jobId: optional(JobId),
  attempt: optional(Attempt),
});

export const StudioFrame = z.discriminatedUnion('type', [
  WelcomeFrame,
  OfferFrame,
  HeartbeatAckFrame,
  CompleteAckFrame,
  FailAckFrame,
  CancelFrame,
  ErrorFrame,
]);
export type StudioFrame = z.infer<typeof StudioFrame>;
export type WelcomeFrame = z.infer<typeof WelcomeFrame>;
export type OfferFrame = z.infer<typeof OfferFrame>;
export type CompleteAckFrame = z.infer<typeof CompleteAckFrame>;
export type FailAckFrame = z.infer<typeof FailAckFrame>;
export type CancelFrame = z.infer<typeof CancelFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;

export const WORKER_FRAME_TYPES = WorkerFrame.options.map((o) => o.shape.type.value);
export const STUDIO_FRAME_TYPES = StudioFrame.options.map((o) => o.shape.type.value);
