// The studio's admin API (under /graphics/api) with the bearer token on every request.

import { ApiError, createSender } from '/kit/api.js';

export { ApiError };

export const API_BASE = '/graphics/api';

/**
 * `token()` answers the current admin token; `onUnauthorized(error)` runs on every 401 before the
 * error is thrown, so the app can bring back the sign-in form.
 */
export function createApi({ token, onUnauthorized }) {
  const send = createSender({
    base: API_BASE,
    token,
    onUnauthorized,
    unreachable: (error) => new ApiError(0, 'network', `The studio could not be reached (${error.message}). Check that it is running.`),
  });
  const json = async (method, path, options) => (await send(method, path, options)).json();
  const id = (value) => encodeURIComponent(value);

  return {
    workers: () => json('GET', '/workers'),
    pending: () => json('GET', '/workers/pending'),
    approve: (requestId, label) => json('POST', `/workers/pending/${id(requestId)}/approve`, label ? { json: { label } } : {}),
    reject: (requestId, reason) => json('POST', `/workers/pending/${id(requestId)}/reject`, { json: { reason } }),
    deleteWorker: (workerId) => json('DELETE', `/workers/${id(workerId)}`),
    models: () => json('GET', '/models'),
    jobs: (query) => json('GET', '/jobs', { query }),
    job: (jobId) => json('GET', `/jobs/${id(jobId)}`),
    createJob: (model, task) => json('POST', '/jobs', { json: { model, task } }),
    cancelJob: (jobId) => json('POST', `/jobs/${id(jobId)}/cancel`),
    retryJob: (jobId) => json('POST', `/jobs/${id(jobId)}/retry`),
    /** The raw result response: bytes for files, JSON text for JSON results. */
    result: (jobId) => send('GET', `/jobs/${id(jobId)}/result`),
  };
}
