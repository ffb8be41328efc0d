// JSON over HTTP with the bearer token on every request, as both web front ends talk to their server.

/** A failed call: the server's `{error, message}`, or status 0 when the server did not answer. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }

  /** The server did not answer at all (stopped, restarting, or the port changed). */
  get unreachable() {
    return this.status === 0;
  }
}

/**
 * A `send(method, path, { json, query, signal })` that answers the Response or throws an ApiError.
 * `token()` answers the current token; `onUnauthorized(error)` runs on every 401 before the error is
 * thrown, so the app can ask for a token again; `unreachable(error)` makes the ApiError for a
 * network failure (an abort is rethrown as it is).
 */
export function createSender({ base = '', token, onUnauthorized, unreachable }) {
  return async function send(method, path, { json, query, signal } = {}) {
    const url = new URL(base + path, location.origin);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
    }
    const headers = { authorization: `Bearer ${token()}` };
    let body;
    if (json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body, cache: 'no-store', signal });
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      throw unreachable(error);
    }
    if (!response.ok) {
      const failure = await errorFrom(response, method, path);
      if (failure.status === 401) onUnauthorized(failure);
      throw failure;
    }
    return response;
  };
}

async function errorFrom(response, method, path) {
  let code = `http_${response.status}`;
  let message = `${method} ${path} failed with HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (typeof body?.error === 'string') code = body.error;
    if (typeof body?.message === 'string' && body.message) message = body.message;
  } catch {
    // Not JSON (a proxy's error page): the generic message stands.
  }
  return new ApiError(response.status, code, message);
}
