import type { Logger } from '@studio-worker/log';
import { AdminAuth } from './admin-auth.ts';
import { DEFAULT_DISPATCHER_OPTIONS, Dispatcher, type DispatcherOptions } from './dispatcher.ts';
import { Jobs, type JobsOptions } from './jobs.ts';
import { ModelRegistry } from './models.ts';
import type { Ports } from './ports.ts';
import { Registration, type RegistrationOptions } from './registration.ts';
import { migrate } from './schema.ts';

export * from './ports.ts';
export * from './result.ts';
export { Dispatcher, encodeOffer, DEFAULT_DISPATCHER_OPTIONS, type DispatcherOptions, type UploadedResult } from './dispatcher.ts';
export { Jobs, type JobResult } from './jobs.ts';
export { ModelRegistry } from './models.ts';
export { Registration } from './registration.ts';
export { AdminAuth } from './admin-auth.ts';
export { RateLimiter } from './rate-limit.ts';
export { jobView, workerView, resultPath } from './views.ts';
export { decideAfterClaim } from './retry-policy.ts';
export { migrate, SCHEMA_VERSION } from './schema.ts';
export { SEED_MODELS } from './seeds.ts';

export type CoreOptions = DispatcherOptions & JobsOptions & RegistrationOptions;

export const DEFAULT_CORE_OPTIONS: CoreOptions = {
  ...DEFAULT_DISPATCHER_OPTIONS,
  defaultMaxAttempts: 3,
  pendingTtlMs: 7 * 24 * 3600_000,
  maxCapabilitiesBytes: 64 * 1024,
  maxPendingPerAddress: 20,
  maxPendingTotal: 500,
};

export interface StudioCore {
  dispatcher: Dispatcher;
  jobs: Jobs;
  models: ModelRegistry;
  registration: Registration;
  admin: AdminAuth;
  options: CoreOptions;
}

/** Build the studio core over its ports: migrate the schema, seed the registry, wire the services. */
export function createStudioCore(ports: Ports, log: Logger, options: Partial<CoreOptions> = {}): StudioCore {
  const opts: CoreOptions = { ...DEFAULT_CORE_OPTIONS, ...options };
  migrate(ports.sql);
  const dispatcher = new Dispatcher(ports, opts, log.child({ module: 'dispatcher' }));
  const models = new ModelRegistry(ports);
  models.seed();
  return {
    dispatcher,
    models,
    jobs: new Jobs(ports, dispatcher, models, opts, log.child({ module: 'jobs' })),
    registration: new Registration(ports, dispatcher, opts, log.child({ module: 'registration' })),
    admin: new AdminAuth(ports),
    options: opts,
  };
}
