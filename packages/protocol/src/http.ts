import { z } from 'zod';
import { WorkerCapabilities } from './capabilities.ts';
import { ProgressPhase } from './frames.ts';
import { ModelSource } from './model-source.ts';
import { optional } from './optional.ts';
import { POOL_NAME } from './pools.ts';
import { Task, TaskKind } from './task.ts';

// ---------------------------------------------------------------- registration (original-spec §3.1)

export const AutoRegisterRequest = z.object({
  installId: z.string().min(8).max(64),
  /** Lowercase hex SHA-256 of the UTF-8 bytes of the hex secret; the secret never leaves the worker. */
  registrationSecretHash: z.string().regex(/^[0-9a-f]{64}$/, 'lowercase hex SHA-256 (64 characters)'),
  capabilities: WorkerCapabilities,
  userAgent: z.string().max(200).default(''),
  /** Extension: a name the operator sees next to the machine name. */
  label: optional(z.string().max(100)),
});
export type AutoRegisterRequest = z.infer<typeof AutoRegisterRequest>;

export const RegisterRequestCreated = z.object({
  requestId: z.string(),
  status: z.literal('pending'),
});
export type RegisterRequestCreated = z.infer<typeof RegisterRequestCreated>;

export const RegistrationPoll = z.discriminatedUnion('status', [
  z.object({ status: z.literal('pending') }),
  z.object({ status: z.literal('approved'), workerId: z.string(), authToken: z.string() }),
  z.object({ status: z.literal('rejected'), reason: z.string().default('') }),
]);
export type RegistrationPoll = z.infer<typeof RegistrationPoll>;

export const PendingRequestView = z.object({
  requestId: z.string(),
  installId: z.string(),
  machineName: z.string(),
  username: z.string(),
  label: optional(z.string()),
  vramTotalGb: z.number(),
  vramThresholdGb: z.number(),
  taskKinds: z.array(TaskKind),
  supportedModels: z.array(z.string()),
  agentVersion: z.string(),
  sourceIp: z.string(),
  userAgent: z.string(),
  requestedAt: z.string(),
});
export type PendingRequestView = z.infer<typeof PendingRequestView>;

export const ApproveRequestBody = z.object({ label: optional(z.string().max(100)) });
export const RejectRequestBody = z.object({ reason: z.string().max(500).default('') });

// ---------------------------------------------------------------- models

export const ModelId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'letters, digits, ".", "_", ":" or "-", at most 128 characters');

const modelFields = {
  kind: TaskKind,
  displayName: optional(z.string().max(200)),
  description: optional(z.string().max(2000)),
  vramGbEstimate: z.number().nonnegative(),
  enabled: z.boolean(),
  source: ModelSource,
  /** The pool whose workers run this model's jobs (a job without its own pool goes there); default: `default`. */
  pool: optional(POOL_NAME),
};

export const ModelEntry = z.object({
  id: ModelId,
  ...modelFields,
  vramGbEstimate: modelFields.vramGbEstimate.default(0),
  enabled: modelFields.enabled.default(true),
});
export type ModelEntry = z.infer<typeof ModelEntry>;
export type ModelEntryInput = z.input<typeof ModelEntry>;

/** A PATCH: only the fields given change (no defaults here, unlike ModelEntry). */
export const ModelUpdate = z.object(modelFields).partial();
export type ModelUpdate = z.infer<typeof ModelUpdate>;

export const ModelView = ModelEntry.extend({
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Online workers that can run this model now (its engine and kind, within their VRAM threshold). */
  workersOnline: optional(z.number()),
  /** When no online worker can run it: why not (no engine, too little VRAM, only original workers). */
  waitingReason: optional(z.string()),
});
export type ModelView = z.infer<typeof ModelView>;

// ---------------------------------------------------------------- jobs

export const JOB_STATUSES = ['queued', 'claimed', 'running', 'done', 'failed', 'cancelled'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['done', 'failed', 'cancelled'];

export const CreateJobRequest = z.object({
  model: z.string().min(1),
  task: Task,
  gameId: z.string().max(200).default(''),
  assetName: z.string().max(500).default(''),
  /** Retryable failures allowed before the job fails for good (default: the studio's, 3). */
  maxAttempts: optional(z.number().int().min(1).max(20)),
  /** Higher first; equal priorities run oldest first. */
  priority: z.number().int().min(-1000).max(1000).default(0),
  /** The pool that runs this job (default: its model's pool, else `default`). */
  pool: optional(POOL_NAME),
});
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;
export type CreateJobInput = z.input<typeof CreateJobRequest>;

export const MAX_BATCH_JOBS = 1000;
/** A client's idempotency key (`Idempotency-Key` header, or `key` in a batch entry). */
export const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,200}$/, '1 to 200 printable ASCII characters without spaces');
/** A batch entry: a job, and optionally its idempotency key (the same key and body answer the same job). */
export const KeyedJobRequest = CreateJobRequest.extend({ key: optional(IdempotencyKey) });
export type KeyedJobInput = z.input<typeof KeyedJobRequest>;
export const CreateJobsBatch = z.object({ jobs: z.array(KeyedJobRequest).min(1).max(MAX_BATCH_JOBS) });

export const JobProgress = z.object({
  phase: ProgressPhase,
  step: optional(z.number()),
  total: optional(z.number()),
  fraction: optional(z.number()),
  message: optional(z.string()),
  at: z.string(),
});
export type JobProgress = z.infer<typeof JobProgress>;

export const JobResultView = z.discriminatedUnion('type', [
  z.object({ type: z.literal('json'), url: z.string() }),
  z.object({ type: z.literal('file'), url: z.string(), ext: z.string(), mime: z.string(), bytes: z.number() }),
]);
export type JobResultView = z.infer<typeof JobResultView>;

export const AttemptOutcome = z.enum(['running', 'done', 'failed', 'lost', 'handed_back', 'cancelled', 'rejected']);
export const AttemptView = z.object({
  attempt: z.number(),
  workerId: z.string(),
  offeredAt: z.string(),
  acceptedAt: optional(z.string()),
  endedAt: optional(z.string()),
  outcome: AttemptOutcome,
  error: optional(z.string()),
});
export type AttemptView = z.infer<typeof AttemptView>;

export const JobView = z.object({
  id: z.string(),
  /** Creation order (jobs of one batch share createdAt); lists are newest first by it. */
  seq: optional(z.number()),
  status: JobStatus,
  model: z.string(),
  kind: TaskKind,
  engine: z.string(),
  gameId: z.string(),
  assetName: z.string(),
  prompt: z.string(),
  task: Task,
  priority: z.number(),
  /** Claim generation: grows on every requeue. */
  attempt: z.number(),
  /** Retryable failures so far, counted against maxAttempts. */
  failures: z.number(),
  maxAttempts: z.number(),
  workerId: optional(z.string()),
  lastWorkerId: optional(z.string()),
  lastError: optional(z.string()),
  progress: optional(JobProgress),
  createdAt: z.string(),
  claimedAt: optional(z.string()),
  startedAt: optional(z.string()),
  completedAt: optional(z.string()),
  updatedAt: z.string(),
  notBefore: optional(z.string()),
  result: optional(JobResultView),
  /** When the retention policy deleted the result (the job itself is kept). */
  resultExpiredAt: optional(z.string()),
  attempts: optional(z.array(AttemptView)),
});
export type JobView = z.infer<typeof JobView>;

/** The answer to POST /jobs/batch: one job per entry, in order; `created` counts the new ones. */
export const CreateJobsBatchResult = z.object({ jobs: z.array(JobView), created: z.number() });
export type CreateJobsBatchResult = z.infer<typeof CreateJobsBatchResult>;

// ---------------------------------------------------------------- workers

export const WorkerView = z.object({
  id: z.string(),
  label: z.string(),
  machineName: z.string(),
  state: z.enum(['online', 'offline']),
  paused: z.boolean(),
  currentJobIds: z.array(z.string()),
  lastHeartbeatAt: optional(z.string()),
  connectedAt: optional(z.string()),
  approvedAt: z.string(),
  capabilities: optional(WorkerCapabilities),
  /** Consecutive failures; at 3 the studio stops offering for a while. */
  consecutiveFailures: z.number(),
  coolingDownUntil: optional(z.string()),
  /** The `userAgent` its registration request carried (`studio-worker/<version>`), when it registered. */
  userAgent: optional(z.string()),
});
export type WorkerView = z.infer<typeof WorkerView>;

// ---------------------------------------------------------------- realtime feed for dashboards

export const StudioEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job'), job: JobView }),
  z.object({ type: z.literal('worker'), worker: WorkerView }),
  z.object({ type: z.literal('workerRemoved'), workerId: z.string() }),
  /** The pending list changes one request at a time (never the whole list: strangers fill it). */
  z.object({ type: z.literal('pendingAdded'), request: PendingRequestView }),
  z.object({ type: z.literal('pendingRemoved'), requestId: z.string() }),
  /** A live preview of a running job (from a worker's progress frame); not stored. */
  z.object({ type: z.literal('jobPreview'), jobId: z.string(), mime: z.string(), data: z.string() }),
]);
export type StudioEvent = z.infer<typeof StudioEvent>;

// ---------------------------------------------------------------- clients following many jobs

export const JobLookupRequest = z.object({ ids: z.array(z.string().min(1).max(100)).min(1).max(MAX_BATCH_JOBS) });
export const JobLookupResult = z.object({ jobs: z.array(JobView), missing: z.array(z.string()) });
export type JobLookupResult = z.infer<typeof JobLookupResult>;

// ---------------------------------------------------------------- API tokens

/** admin: everything; submit: create jobs, read/cancel its own jobs and their results; read: read-only. */
export const TokenScope = z.enum(['admin', 'submit', 'read']);
export type TokenScope = z.infer<typeof TokenScope>;
export const CreateTokenRequest = z.object({ name: z.string().min(1).max(100), scope: TokenScope });
export const TokenView = z.object({
  id: z.string(),
  name: z.string(),
  scope: TokenScope,
  createdAt: z.string(),
  lastUsedAt: optional(z.string()),
  revokedAt: optional(z.string()),
});
export type TokenView = z.infer<typeof TokenView>;
/** The answer to creating a token: the only time the token itself is shown. */
export const CreatedToken = TokenView.extend({ token: z.string() });
export type CreatedToken = z.infer<typeof CreatedToken>;

// ---------------------------------------------------------------- job events: webhooks and the SSE stream

export const WebhookEventStatus = z.enum(['done', 'failed', 'cancelled']);
export const CreateWebhookRequest = z.object({
  /** https, or http to a loopback address (local receivers, tests). */
  url: z.string().url().max(2000),
  /** Which job endings are delivered (default: all three). */
  events: z.array(WebhookEventStatus).min(1).default(['done', 'failed', 'cancelled']),
});
export const WebhookView = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(WebhookEventStatus),
  createdAt: z.string(),
  pending: z.number(),
  delivered: z.number(),
  failed: z.number(),
});
export type WebhookView = z.infer<typeof WebhookView>;
/** The answer to creating a webhook: the only time its signing secret is shown. */
export const CreatedWebhook = WebhookView.extend({ secret: z.string() });
export type CreatedWebhook = z.infer<typeof CreatedWebhook>;
export const WebhookDeliveryView = z.object({
  id: z.number(),
  eventId: z.string(),
  jobId: z.string(),
  type: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number(),
  nextAt: optional(z.string()),
  createdAt: z.string(),
  deliveredAt: optional(z.string()),
  lastStatus: optional(z.number()),
  lastError: optional(z.string()),
});
export type WebhookDeliveryView = z.infer<typeof WebhookDeliveryView>;

/** One job event, as a webhook body and as the `data` of a server-sent event. */
export const JobEvent = z.object({
  /** `evt_<n>`: the same event always has the same id (deduplicate deliveries by it). */
  id: z.string(),
  type: z.string(),
  jobId: z.string(),
  status: JobStatus,
  at: z.string(),
  /** The job as it is when the event is sent (terminal events only). */
  job: optional(JobView),
});
export type JobEvent = z.infer<typeof JobEvent>;

// ---------------------------------------------------------------- retention

export const GcRequest = z.object({ olderThanDays: optional(z.number().min(0)) });
export const StorageView = z.object({
  resultFiles: z.number(),
  resultBytes: z.number(),
  jsonResults: z.number(),
  expiredJobs: z.number(),
  retentionDays: z.number().nullable(),
});
export type StorageView = z.infer<typeof StorageView>;

// ---------------------------------------------------------------- results gallery

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'a date such as 2026-12-01 or 2026-12-01T10:00:00Z');
export const GalleryQuery = z.object({
  model: optional(z.string().max(200)),
  gameId: optional(z.string().max(200)),
  /** A part of the asset name, case-insensitive. */
  asset: optional(z.string().max(500)),
  /** Finished at or after this date. */
  since: optional(isoDate),
  /** Finished before this date. */
  until: optional(isoDate),
  before: optional(z.coerce.number().int().positive()),
  limit: optional(z.coerce.number().int().min(1).max(200)),
});
export const GalleryPage = z.object({ jobs: z.array(JobView), nextBefore: optional(z.number()) });
