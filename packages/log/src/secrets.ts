// No imports: the Cloudflare host's logger (pino's browser build, which has no `redact`) uses this
// file alone, without pulling in the Node destinations of index.ts.

/**
 * Field names whose values are secrets. pino replaces them with "[redacted]" wherever they appear
 * (top level or one object down), so a token passed by mistake never reaches a log line.
 */
export const SECRET_KEYS: readonly string[] = [
  'authToken',
  'auth_token',
  'token',
  'adminToken',
  'registrationSecret',
  'registration_secret',
  'secret',
  'localApiToken',
  'local_api_token',
  'password',
  'apiKey',
  'api_key',
  'authorization',
  'Authorization',
];

const SECRET = new Set(SECRET_KEYS);

/** `REDACT_PATHS` for a plain object: a copy with every secret field (top level or one down) censored. */
export function redactSecrets(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (SECRET.has(key)) out[key] = '[redacted]';
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const inner: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) inner[k] = SECRET.has(k) ? '[redacted]' : v;
      out[key] = inner;
    } else out[key] = value;
  }
  return out;
}
