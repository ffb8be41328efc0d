// The daemon's local API (same origin as this page), with the bearer token on every call.

import { ApiError, createSender } from '/kit/api.js';

export { ApiError };

/**
 * `token()` answers the current token; `onUnauthorized(error)` runs on every 401 before the error
 * is thrown, so the app can show the token page.
 */
export function createApi({ token, onUnauthorized }) {
  const send = createSender({
    token,
    onUnauthorized,
    unreachable(error) {
      const failure = new ApiError(0, 'unreachable', `the daemon at ${location.origin} did not answer (${error?.message ?? error})`);
      failure.detail = String(error?.message ?? error);
      return failure;
    },
  });
  const json = async (method, path, options) => (await send(method, path, options)).json();
  const id = (value) => encodeURIComponent(value);

  return {
    status: () => json('GET', '/daemon/status'),
    logs: (after) => json('GET', `/daemon/logs?after=${after}`),
    pause: () => json('POST', '/daemon/pause'),
    resume: () => json('POST', '/daemon/resume'),
    config: () => json('GET', '/daemon/config'),
    saveConfig: (patch) => json('PUT', '/daemon/config', { json: patch }),
    resetRegistration: () => json('POST', '/daemon/registration/reset'),
    shutdown: () => json('POST', '/daemon/shutdown'),
    checkForUpdate: () => json('POST', '/daemon/update/check'),
    jobs: () => json('GET', '/jobs'),
    job: (jobId) => json('GET', `/jobs/${id(jobId)}`),
    thumbnail: async (jobId) => (await send('GET', `/jobs/${id(jobId)}/thumbnail`)).blob(),
    models: () => json('GET', '/models'),
    downloadModel: (modelId) => json('POST', `/models/${id(modelId)}/download`),
    deleteModel: (modelId) => json('DELETE', `/models/${id(modelId)}`),
    /** No auth: the free space of the models root. */
    health: async () => {
      try {
        const response = await fetch('/healthz', { cache: 'no-store' });
        return response.ok ? await response.json() : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
