import { POOL_NAME } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { Access } from './access.ts';
import { AdminAuth } from './admin-auth.ts';
import { ApiTokens } from './api-tokens.ts';
import { Webhooks } from './webhooks.ts';
import { MetricsSource } from './metrics.ts';
import { Retention } from './retention.ts';
import { Gallery } from './gallery.ts';
import { DEFAULT_HOUSEKEEPING_OPTIONS, Housekeeping, type HousekeepingOptions } from './housekeeping.ts';
import { DEFAULT_DISPATCHER_OPTIONS, Dispatcher, type DispatcherOptions } from './dispatcher.ts';
import { Jobs, type JobsOptions } from './jobs.ts';
import { ModelRegistry, type ModelRegistryOptions } from './models.ts';
import type { Ports } from './ports.ts';
import { Registration, type RegistrationOptions } from './registration.ts';
import { migrate } from './schema.ts';
import { createStores, RollbackWatch, type Stores } from './stores.ts';

export * from './ports.ts';
export * from './result.ts';
export { Dispatcher, encodeOffer, DEFAULT_DISPATCHER_OPTIONS, type DispatcherOptions, type UploadedResult } from './dispatcher.ts';
export { Jobs, MAX_LIST_LIMIT, type JobResult } from './jobs.ts';
export { TASK_TEXT_LIMITS, taskTextProblem } from './task-limits.ts';
export { ModelRegistry, modelFileUrlProblem } from './models.ts';
export { Registration } from './registration.ts';
export { AdminAuth } from './admin-auth.ts';
export type { JobSubmission, Submitted } from './jobs.ts';
export { ApiTokens } from './api-tokens.ts';
export { MetricsSource, type MetricsSnapshot } from './metrics.ts';
export { Retention, type GcReport, type StorageReport } from './retention.ts';
export { Gallery, type GalleryFilter } from './gallery.ts';
export { Housekeeping, DEFAULT_HOUSEKEEPING_OPTIONS, type HousekeepingOptions } from './housekeeping.ts';
export { SessionSnapshot } from './sessions.ts';
export { exportStudio, importStudio, ImportReport, StudioExport, TRANSFER_FORMAT, TRANSFER_VERSION, type StudioExportInput } from './transfer.ts';
export { Webhooks, signWebhook, DEFAULT_DELIVERY_POLICY, type DeliveryPolicy } from './webhooks.ts';
export { Access, ADMIN_OWNER, type Caller } from './access.ts';
export { RateLimiter } from './rate-limit.ts';
export { workerTokenMatches } from './worker-auth.ts';
export { jobView, workerView, resultPath } from './views.ts';
export { decideAfterClaim } from './retry-policy.ts';
export { migrate, SCHEMA_VERSION } from './schema.ts';
export { SEED_MODELS } from './seeds.ts';
export { createStores, type Stores } from './stores.ts';
export type { WorkerLogLine } from './worker-log-store.ts';

export type CoreOptions = DispatcherOptions &
  JobsOptions &
  RegistrationOptions &
  ModelRegistryOptions & {
    /** Periodic work (webhook retries, log pruning, retention); see Housekeeping. */
    housekeeping?: Partial<HousekeepingOptions>;
  };

export const DEFAULT_CORE_OPTIONS: CoreOptions = {
  ...DEFAULT_DISPATCHER_OPTIONS,
  defaultMaxAttempts: 3,
  pendingTtlMs: 7 * 24 * 3600_000,
  allowLoopbackHttpModels: false,
  maxCapabilitiesBytes: 64 * 1024,
  maxPendingPerAddress: 20,
  maxPendingTotal: 500,
};

export interface StudioCore {
  /** The studio's SQL (one store per table); the services below hold the same object. */
  stores: Stores;
  dispatcher: Dispatcher;
  jobs: Jobs;
  models: ModelRegistry;
  registration: Registration;
  admin: AdminAuth;
  tokens: ApiTokens;
  access: Access;
  webhooks: Webhooks;
  metrics: MetricsSource;
  retention: Retention;
  gallery: Gallery;
  housekeeping: Housekeeping;
  options: CoreOptions;
  /** The ports it runs over (a service that writes several stores in one transaction uses `sql`). */
  ports: Ports;
}

/** Build the studio core over its ports: migrate the schema, seed the registry, wire the services. */
export function createStudioCore(ports: Ports, log: Logger, options: Partial<CoreOptions> = {}): StudioCore {
  const opts: CoreOptions = { ...DEFAULT_CORE_OPTIONS, ...options };
  if (opts.pool !== undefined && !POOL_NAME.safeParse(opts.pool).success) {
    throw new Error(`pool "${opts.pool}" is not a pool name: 1 to 32 lowercase letters, digits or "-"`);
  }
  migrate(ports.sql);
  // Every service's unit goes through the watch, so one that rolls back also resets the job tally.
  // The stores write through the host's port directly (no extra call per statement): a store's own
  // units never change a job's status. The host's other ports stay live (read through the
  // prototype): a host may swap one later.
  const stores = createStores(ports.sql);
  const sql = new RollbackWatch(ports.sql, () => stores.jobs.countsUnknown());
  ports = Object.create(ports, { sql: { value: sql, enumerable: true } }) as Ports;
  stores.jobs.recount();
  const dispatcher = new Dispatcher(ports, stores, opts, log.child({ module: 'dispatcher' }));
  const models = new ModelRegistry(ports, stores, { allowLoopbackHttpModels: opts.allowLoopbackHttpModels });
  models.seed();
  const admin = new AdminAuth(ports, stores);
  const tokens = new ApiTokens(ports, stores);
  const webhooks = new Webhooks(ports, stores);
  const retention = new Retention(ports, stores);
  const housekeeping = new Housekeeping(ports, stores, dispatcher, webhooks, retention, { ...DEFAULT_HOUSEKEEPING_OPTIONS, ...opts.housekeeping }, log.child({ module: 'housekeeping' }));
  return {
    stores,
    dispatcher,
    models,
    jobs: new Jobs(ports, stores, dispatcher, models, opts, log.child({ module: 'jobs' })),
    registration: new Registration(ports, stores, dispatcher, opts, log.child({ module: 'registration' })),
    admin,
    tokens,
    access: new Access(stores, admin, tokens),
    webhooks,
    metrics: new MetricsSource(ports, stores, dispatcher),
    retention,
    gallery: new Gallery(stores),
    housekeeping,
    options: opts,
    ports,
  };
}
