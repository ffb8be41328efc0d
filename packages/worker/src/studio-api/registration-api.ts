import { RegisterRequestCreated, RegistrationPoll, type AutoRegisterRequest } from '@studio-worker/protocol';
import { errorMessageOf, requestStudio, type StudioHttpClient } from './http.ts';

export type CreateRequestOutcome = { kind: 'created'; requestId: string } | { kind: 'error'; status?: number; message: string };

/** The header a sharded studio reads a registration's pool from (packages/studio/src/cloudflare/pools.ts). */
export const POOL_HEADER = 'x-studio-pool';

/**
 * `POST /workers/register-request` (original-spec §3.1 step 3). With `pool`, the request names it
 * in `x-studio-pool`: a sharded studio makes the request (and so the worker) in that pool; without
 * it the request is exactly an original worker's.
 */
export async function createRegisterRequest(client: StudioHttpClient, body: AutoRegisterRequest, pool?: string): Promise<CreateRequestOutcome> {
  const answer = await requestStudio(client, '/workers/register-request', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(pool === undefined ? {} : { [POOL_HEADER]: pool }) },
    body: JSON.stringify(body),
  });
  if (answer.kind === 'transport') return { kind: 'error', message: answer.message };
  if (answer.status < 200 || answer.status > 299) return { kind: 'error', status: answer.status, message: errorMessageOf(answer) };
  const parsed = RegisterRequestCreated.safeParse(answer.body);
  if (!parsed.success) return { kind: 'error', status: answer.status, message: 'the studio answered without a requestId' };
  return { kind: 'created', requestId: parsed.data.requestId };
}

export type PollOutcome =
  | { kind: 'pending' }
  | { kind: 'approved'; workerId: string; authToken: string }
  | { kind: 'rejected'; reason: string }
  /** 404 (the studio forgot the request) or 401 (it no longer knows this secret): start over. */
  | { kind: 'stale'; status: number; message: string }
  | { kind: 'error'; status?: number; message: string };

/** `GET /workers/register-requests/:id` with the raw secret as bearer (step 4). */
export async function pollRegisterRequest(client: StudioHttpClient, requestId: string, secret: string): Promise<PollOutcome> {
  const answer = await requestStudio(client, `/workers/register-requests/${encodeURIComponent(requestId)}`, {
    method: 'GET',
    headers: { authorization: `Bearer ${secret}` },
  });
  if (answer.kind === 'transport') return { kind: 'error', message: answer.message };
  if (answer.status === 404 || answer.status === 401) return { kind: 'stale', status: answer.status, message: errorMessageOf(answer) };
  if (answer.status !== 200) return { kind: 'error', status: answer.status, message: errorMessageOf(answer) };
  const parsed = RegistrationPoll.safeParse(answer.body);
  if (!parsed.success) return { kind: 'error', status: answer.status, message: 'the studio answered with an unknown registration status' };
  const poll = parsed.data;
  if (poll.status === 'approved') return { kind: 'approved', workerId: poll.workerId, authToken: poll.authToken };
  if (poll.status === 'rejected') return { kind: 'rejected', reason: poll.reason };
  return { kind: 'pending' };
}
