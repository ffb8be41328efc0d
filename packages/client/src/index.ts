export * from './client.ts';
// The protocol's types the client's calls take and answer with, for callers to name.
export type {
  ApiError,
  CreateJobInput,
  CreateJobsBatchResult,
  CreatedToken,
  CreatedWebhook,
  JobLookupResult,
  JobStatus,
  JobView,
  KeyedJobInput,
  ModelEntryInput,
  ModelView,
  PendingRequestView,
  StorageView,
  TokenScope,
  TokenView,
  WebhookDeliveryView,
  WebhookView,
  WorkerView,
} from '@studio-worker/protocol';
