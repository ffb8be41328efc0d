import { z } from 'zod';
import { isHttpUrl } from '../../platform/url-policy.ts';

/** An empty string in config.toml means "not set". */
const unsetIfEmpty = (value: unknown) => (value === '' ? undefined : value);

/**
 * `[engines.openai]` of config.toml (snake_case there, camelCase here): any server that speaks
 * OpenAI's `POST /v1/images/generations` — LocalAI, stable-diffusion.cpp's sd-server, hosted APIs.
 */
export const OpenAIEngineConfig = z.object({
  /** The API root including its version, e.g. "http://127.0.0.1:8080/v1". Without it the engine is unavailable. */
  baseUrl: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .refine(isHttpUrl, 'an http or https URL such as "http://127.0.0.1:8080/v1"')
      .transform((url) => url.replace(/\/+$/, ''))
      .optional(),
  ),
  /** Name of the environment variable that holds the API key (preferred over `apiKey`). */
  apiKeyEnv: z.preprocess(unsetIfEmpty, z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as "OPENAI_API_KEY"').optional()),
  /** Secret: the API key itself, stored in config.toml. Prefer `apiKeyEnv`. */
  apiKey: z.preprocess(unsetIfEmpty, z.string().min(1).optional()),
  /** The server-side model name, when the model's cliDefaults.model does not give one. */
  model: z.preprocess(unsetIfEmpty, z.string().min(1).optional()),
  /** One generation request, download of a result URL included. */
  timeoutSecs: z.number().positive().default(300),
  /** How long a probe waits for GET /models. */
  probeTimeoutSecs: z.number().positive().default(5),
  /**
   * What to send as `response_format`: "b64_json" (default), "url", or "none" to leave it out for
   * servers that reject it (OpenAI's gpt-image models always answer base64 and refuse the field).
   */
  responseFormat: z.enum(['b64_json', 'url', 'none']).default('b64_json'),
  /**
   * How to send what OpenAI's API has no field for (negative prompt, seed, steps): "auto" (default)
   * asks the server which it is (sd-server lists the model "sd-cpp-local"; LocalAI answers GET
   * /version), or name it: "openai", "localai", "sd-server".
   */
  dialect: z.enum(['auto', 'openai', 'localai', 'sd-server']).default('auto'),
});
export type OpenAIEngineConfig = z.output<typeof OpenAIEngineConfig>;
export type OpenAIEngineConfigInput = z.input<typeof OpenAIEngineConfig>;

/** Keys of the table whose values are credentials. */
export const OPENAI_SECRET_KEYS = ['apiKey'] as const;
