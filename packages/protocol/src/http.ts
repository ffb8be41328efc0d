import { z } from 'zod';
import { WorkerCapabilities } from './capabilities.ts';
import { ProgressPhase } from './frames.ts';
import { ModelSource } from './model-source.ts';
import { optional } from './optional.ts';
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
});
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;
export type CreateJobInput = z.input<typeof CreateJobRequest>;

export const MAX_BATCH_JOBS = 1000;
export const CreateJobsBatch = z.object({ jobs: z.array(CreateJobRequest).min(1).max(MAX_BATCH_JOBS) });

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
  attempts: optional(z.array(AttemptView)),
});
export type JobView = z.infer<typeof JobView>;

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
]);
export type StudioEvent = z.infer<typeof StudioEvent>;
