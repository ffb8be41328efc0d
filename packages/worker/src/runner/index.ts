export { ResultDelivery, type ResultDeliveryOptions, type UploadCredentials } from './delivery.ts';
export { JobAbort } from './job-abort.ts';
export { JobRunner, type EngineResolver, type JobEvent, type JobGateLike, type JobRunnerOptions, type LocalJob } from './jobs.ts';
export { Outbox, outboxKey, type OutboxEntry, type OutboxPayload } from './outbox.ts';
export { ProgressThrottle, PROGRESS_INTERVAL_MS } from './progress-throttle.ts';
export { WorkerRuntime, type WorkerRuntimeOptions } from './runtime.ts';
