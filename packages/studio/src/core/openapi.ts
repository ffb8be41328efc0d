import { z } from 'zod';
import {
  API_PREFIX,
  ApiError,
  ApproveRequestBody,
  AutoRegisterRequest,
  CreatedToken,
  CreatedWebhook,
  CreateJobRequest,
  CreateJobsBatch,
  CreateJobsBatchResult,
  CreateTokenRequest,
  CreateWebhookRequest,
  GalleryPage,
  GcRequest,
  JobLookupRequest,
  JobLookupResult,
  JobView,
  ModelEntry,
  ModelUpdate,
  ModelView,
  PendingRequestView,
  RegisterRequestCreated,
  RegistrationPoll,
  RejectRequestBody,
  StorageView,
  TokenView,
  WebhookDeliveryView,
  WebhookView,
  WorkerView,
} from '@studio-worker/protocol';
import { ImportReport, StudioExport } from './transfer.ts';

type Method = 'get' | 'post' | 'patch' | 'delete';
/** Who may call a route: the scopes of API tokens it accepts (admin always), a worker's token, or anyone. */
type Auth = 'admin' | 'read' | 'submit' | 'submit+read' | 'worker' | 'registration secret' | 'none';

interface RouteDoc {
  method: Method;
  /** OpenAPI form, relative to the API prefix: /jobs/{id}. */
  path: string;
  summary: string;
  auth: Auth;
  body?: z.ZodType;
  /** The 2xx answer: a schema, or a media type for bodies that are not JSON. */
  response?: z.ZodType | string;
  status?: number;
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

const Ok = z.object({ ok: z.literal(true) }).passthrough();

/**
 * Every HTTP route of the studio, with its request and answer schemas (the protocol's zod schemas,
 * never written twice). The OpenAPI document is generated from this table; a test compares the
 * table with the routes the app really serves, so a route missing here fails it.
 */
export const API_ROUTES: readonly RouteDoc[] = [
  { method: 'get', path: '/health', summary: 'Liveness, version and workers online', auth: 'none', response: z.object({ ok: z.boolean(), version: z.string(), workersOnline: z.number() }) },
  { method: 'get', path: '/openapi.json', summary: 'This document', auth: 'none', response: 'application/json' },

  { method: 'post', path: '/jobs', summary: 'Create a job (201), or answer the job an Idempotency-Key already made (200)', auth: 'submit', body: CreateJobRequest, response: JobView, status: 201, headers: { 'Idempotency-Key': 'optional; the same key and body answer the same job, a different body is a 409' } },
  { method: 'post', path: '/jobs/batch', summary: 'Create up to 1000 jobs in one transaction, each with an optional idempotency key', auth: 'submit', body: CreateJobsBatch, response: CreateJobsBatchResult, status: 201 },
  { method: 'post', path: '/jobs/lookup', summary: 'Up to 1000 jobs by id (a submit token sees its own)', auth: 'submit+read', body: JobLookupRequest, response: JobLookupResult },
  { method: 'get', path: '/jobs', summary: 'Jobs, newest first, with counts by status', auth: 'read', query: { status: 'a job status', before: 'page: jobs older than this seq', limit: '1 to 500 (default 50)' }, response: z.object({ jobs: z.array(JobView), nextBefore: z.number().optional(), counts: z.record(z.string(), z.number()) }) },
  { method: 'get', path: '/jobs/{id}', summary: 'One job with its attempts', auth: 'submit+read', response: JobView },
  { method: 'get', path: '/jobs/{id}/result', summary: "A done job's result: the file (streamed) or JSON", auth: 'submit+read', response: 'application/octet-stream' },
  { method: 'post', path: '/jobs/{id}/cancel', summary: 'Cancel a job that has not ended', auth: 'submit', response: JobView },
  { method: 'post', path: '/jobs/{id}/retry', summary: 'Queue a failed or cancelled job again', auth: 'admin', response: JobView },

  { method: 'post', path: '/workers/register-request', summary: 'A worker asks to join (unauthenticated, rate limited)', auth: 'none', body: AutoRegisterRequest, response: RegisterRequestCreated, status: 201 },
  { method: 'get', path: '/workers/register-requests/{id}', summary: 'A worker polls its request with its registration secret', auth: 'registration secret', response: RegistrationPoll },
  { method: 'get', path: '/workers/pending', summary: 'Pending registration requests', auth: 'read', response: z.object({ requests: z.array(PendingRequestView) }) },
  { method: 'post', path: '/workers/pending/{id}/approve', summary: 'Approve a registration request', auth: 'admin', body: ApproveRequestBody },
  { method: 'post', path: '/workers/pending/{id}/reject', summary: 'Reject a registration request', auth: 'admin', body: RejectRequestBody },
  { method: 'get', path: '/workers', summary: 'Approved workers', auth: 'read', response: z.object({ workers: z.array(WorkerView) }) },
  { method: 'post', path: '/workers', summary: 'Create an approved worker and answer its token once (provisioning)', auth: 'admin', body: z.object({ label: z.string(), machineName: z.string().optional() }), status: 201 },
  { method: 'get', path: '/workers/{id}', summary: 'One worker', auth: 'read', response: WorkerView },
  { method: 'delete', path: '/workers/{id}', summary: 'Delete a worker (its session is closed with 4004)', auth: 'admin', response: Ok },
  { method: 'get', path: '/workers/{id}/logs', summary: "A worker's shipped logs after a sequence number", auth: 'read', query: { after: 'sequence number', limit: '1 to 1000' } },
  { method: 'post', path: '/workers/{id}/token', summary: 'Mint a new worker token (shown once)', auth: 'admin' },
  { method: 'post', path: '/workers/{id}/jobs/{jobId}/complete', summary: 'A worker uploads a result (multipart, streamed)', auth: 'worker' },

  { method: 'get', path: '/models', summary: 'The model registry with workers online per model', auth: 'submit+read', response: z.object({ models: z.array(ModelView) }) },
  { method: 'post', path: '/models', summary: 'Add a model', auth: 'admin', body: ModelEntry, response: ModelView, status: 201 },
  { method: 'get', path: '/models/{id}', summary: 'One model', auth: 'submit+read', response: ModelView },
  { method: 'patch', path: '/models/{id}', summary: 'Change a model', auth: 'admin', body: ModelUpdate, response: ModelView },
  { method: 'post', path: '/models/{id}/disable', summary: 'Stop accepting jobs for a model', auth: 'admin', response: ModelView },
  { method: 'post', path: '/models/{id}/enable', summary: 'Accept jobs for a model again', auth: 'admin', response: ModelView },

  { method: 'get', path: '/tokens', summary: 'API tokens (never the tokens themselves)', auth: 'admin', response: z.object({ tokens: z.array(TokenView) }) },
  { method: 'post', path: '/tokens', summary: 'Create a scoped API token; the answer is the only time it is shown', auth: 'admin', body: CreateTokenRequest, response: CreatedToken, status: 201 },
  { method: 'post', path: '/tokens/{id}/revoke', summary: 'Revoke an API token', auth: 'admin', response: TokenView },

  { method: 'get', path: '/webhooks', summary: 'Webhook endpoints with delivery counts', auth: 'admin', response: z.object({ webhooks: z.array(WebhookView) }) },
  { method: 'post', path: '/webhooks', summary: 'Add a webhook endpoint; the answer is the only time its signing secret is shown', auth: 'admin', body: CreateWebhookRequest, response: CreatedWebhook, status: 201 },
  { method: 'delete', path: '/webhooks/{id}', summary: 'Remove a webhook endpoint (pending deliveries are dropped)', auth: 'admin', response: Ok },
  { method: 'get', path: '/webhooks/{id}/deliveries', summary: 'Deliveries of an endpoint, newest first', auth: 'admin', query: { status: 'pending | delivered | failed', limit: '1 to 1000' }, response: z.array(WebhookDeliveryView) },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics: open jobs by model and status, workers online by engine, endings, attempts, dispatch latency, upload bytes', auth: 'read', response: 'text/plain' },
  { method: 'get', path: '/storage', summary: 'Disk use of results and the retention setting', auth: 'read', response: StorageView },
  { method: 'post', path: '/gc', summary: 'Run the retention now: delete results older than olderThanDays (default: the configured retention); jobs stay, marked expired', auth: 'admin', body: GcRequest, response: StorageView.extend({ olderThanDays: z.number(), expiredJobs: z.number(), freedBytes: z.number(), prunedEvents: z.number() }) },
  { method: 'post', path: '/admin/import', summary: 'Import a "studio export" (models, workers, unfinished jobs); safe to repeat', auth: 'admin', body: StudioExport, response: ImportReport },
  { method: 'get', path: '/gallery', summary: 'Finished jobs with results, newest first, filtered by model, game, asset name (a part) and finishing date', auth: 'read', query: { model: 'model id', gameId: 'game id', asset: 'part of the asset name', since: 'finished at or after (date)', until: 'finished before (date)', before: 'page: older than this seq', limit: '1 to 200 (default 48)' }, response: GalleryPage },
  { method: 'get', path: '/events', summary: 'Server-sent events of job endings (event: job, data: JobEvent); resume with Last-Event-ID or ?after=<n>', auth: 'read', query: { after: 'event number to start after' }, response: 'text/event-stream' },
];

/** Scopes as the document states them. */
function security(auth: Auth): { security?: Array<Record<string, string[]>>; description: string } {
  switch (auth) {
    case 'none':
      return { security: [], description: 'No token needed.' };
    case 'worker':
      return { description: "The worker's own bearer token." };
    case 'registration secret':
      return { security: [], description: 'The registration secret of the request, as a bearer token.' };
    default:
      return { description: `Admin token, or an API token with scope ${auth === 'admin' ? 'admin' : auth.split('+').concat('admin').join(' or ')}.` };
  }
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  return z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' });
}

/** The OpenAPI 3.1 document for the whole HTTP API. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of API_ROUTES) {
    const { security: sec, description } = security(r.auth);
    const params = [...(r.path.match(/\{(\w+)\}/g) ?? [])].map((p) => ({ name: p.slice(1, -1), in: 'path', required: true, schema: { type: 'string' } }));
    for (const [name, text] of Object.entries(r.query ?? {})) params.push({ name, in: 'query', required: false, schema: { type: 'string' }, description: text } as never);
    for (const [name, text] of Object.entries(r.headers ?? {})) params.push({ name, in: 'header', required: false, schema: { type: 'string' }, description: text } as never);
    const ok =
      r.response === undefined
        ? { description: 'OK', content: { 'application/json': { schema: {} } } }
        : typeof r.response === 'string'
          ? { description: 'OK', content: { [r.response]: { schema: {} } } }
          : { description: 'OK', content: { 'application/json': { schema: jsonSchema(r.response, 'output') } } };
    (paths[r.path] ??= {})[r.method] = {
      summary: r.summary,
      description,
      ...(sec ? { security: sec } : {}),
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } } } : {}),
      responses: {
        [String(r.status ?? 200)]: ok,
        default: { description: 'An error: a stable code and a message saying what to fix', content: { 'application/json': { schema: jsonSchema(ApiError, 'output') } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'studio HTTP API', version, description: 'Generated from the zod schemas of @studio-worker/protocol. The worker WebSocket (/workers/{id}/connect) is documented in docs/protocol.md.' },
    servers: [{ url: API_PREFIX }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
