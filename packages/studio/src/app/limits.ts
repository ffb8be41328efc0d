/**
 * What the studio allows anyone who has not proven who they are yet (and a few things it allows no
 * one). Every value has a `studio serve` flag; docs/security.md lists them in one table. The app
 * enforces the body, depth, upload and registration-rate limits on every host; the two connection
 * timeouts are the Node host's (node/server.ts), a Cloudflare Worker's are the platform's. The
 * registration limits live in the core (RegistrationOptions) because both hosts enforce them.
 */
export interface HostLimits {
  /** Node host: a connection must have sent its complete request headers this long after it opened. */
  headersTimeoutMs: number;
  /** Node host: a connection (keep-alive between requests, or a request body) that moves no byte for this long is closed. */
  idleTimeoutMs: number;
  /** Largest JSON body of any route but the result upload. */
  maxJsonBytes: number;
  /** Deepest nesting of arrays and objects in a JSON body. */
  maxJsonDepth: number;
  /** Largest result file a worker may upload. */
  maxUploadBytes: number;
  /** Registration requests allowed per source address per minute. */
  registerRequestsPerMinute: number;
}

export const DEFAULT_HOST_LIMITS: HostLimits = {
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 65_000,
  maxJsonBytes: 4 * 1024 * 1024,
  maxJsonDepth: 64,
  maxUploadBytes: 256 * 1024 * 1024,
  registerRequestsPerMinute: 10,
};

/**
 * The deepest nesting of a parsed JSON value, walked without recursion (a 10,000-level value must
 * not overflow the stack of whoever measures it). Stops counting once it passes `limit`.
 */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: v, depth } = stack.pop() as { value: unknown; depth: number };
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: depth + 1 });
    }
  }
  return false;
}
