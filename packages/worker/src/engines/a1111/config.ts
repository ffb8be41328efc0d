import { z } from 'zod';
import { isHttpUrl } from '../../platform/url-policy.ts';

export const A1111_DEFAULT_URL = 'http://127.0.0.1:7860';

/** An empty string in config.toml means "not set". */
const optionalText = z.preprocess((value) => (value === '' ? undefined : value), z.string().min(1).optional());
const seconds = (fallback: number) => z.number().positive().default(fallback);

/**
 * `[engines.a1111]` of config.toml (snake_case there, camelCase here). Points the worker at a running
 * AUTOMATIC1111 or Forge WebUI started with `--api`.
 */
export const A1111EngineConfig = z.object({
  /** The WebUI's address, without /sdapi/v1. */
  url: z
    .string()
    .refine(isHttpUrl, 'an http or https URL such as "http://127.0.0.1:7860"')
    .transform((url) => url.replace(/\/+$/, ''))
    .default(A1111_DEFAULT_URL),
  /** HTTP basic auth, when the WebUI runs with `--api-auth user:password`. */
  username: optionalText,
  /** Secret: masked by `studio-worker config`, redacted from logs. */
  password: optionalText,
  /** A job that has not finished after this long is interrupted and failed (retryable). */
  timeoutSecs: seconds(1800),
  /** Watchdog: no change on /sdapi/v1/progress for this long → interrupt, retryable failure. */
  stepTimeoutSecs: seconds(120),
  /** How long a probe waits for /sdapi/v1/options. */
  probeTimeoutSecs: seconds(5),
  /** How often /sdapi/v1/progress is polled while a job runs. */
  progressPollMs: z.number().int().min(10).default(500),
});
export type A1111EngineConfig = z.output<typeof A1111EngineConfig>;
export type A1111EngineConfigInput = z.input<typeof A1111EngineConfig>;

/** Keys of the table whose values are credentials. */
export const A1111_SECRET_KEYS = ['password'] as const;
