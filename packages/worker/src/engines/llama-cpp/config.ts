import { z } from 'zod';
import { isHttpUrl } from '../../platform/url-policy.ts';

/** How the engine runs its LLM jobs. */
export const LLAMA_CPP_MODES = ['server', 'subprocess', 'in-process'] as const;
export type LlamaCppMode = (typeof LLAMA_CPP_MODES)[number];

const seconds = (fallback: number) => z.number().positive().default(fallback);

/**
 * The `[engines.llama-cpp]` table (camelCase here; snake_case in config.toml). Every key is optional.
 * `mode` picks the backend; left out, `server_url` means "server", `llama_server` means "subprocess",
 * and with neither the engine looks for llama-server in `<models_root>/bin` and on PATH.
 */
export const LlamaCppEngineConfig = z.object({
  mode: z.enum(LLAMA_CPP_MODES).optional(),
  /** Base URL of a running OpenAI-compatible server, up to and including `/v1`. */
  serverUrl: z.string().refine(isHttpUrl, 'an http or https URL such as "http://127.0.0.1:8081/v1"').optional(),
  /** Bearer token for `server_url` (a secret: masked and never logged). */
  apiKey: z.string().min(1).optional(),
  /** Name of an environment variable holding the bearer token, e.g. "OPENAI_API_KEY". */
  apiKeyEnv: z.string().min(1).optional(),
  /** Path of the llama-server binary the engine starts itself (one resident server per model). */
  llamaServer: z.string().min(1).optional(),
  /** Extra llama-server arguments, e.g. ["-ngl", "99", "--flash-attn", "on"]. */
  extraArgs: z.array(z.string()).default([]),
  /** `-c` for llama-server and the in-process context, when the model's cliDefaults has no contextSize. */
  contextSize: z.number().int().positive().default(4096),
  /** llama-server's port; 0 picks a free one each start. */
  port: z.number().int().min(0).max(65_535).default(0),
  /** No new token for this long (after the first) aborts the job as a retryable failure. */
  tokenTimeoutSecs: seconds(60),
  /** No first token for this long aborts the job: prompt processing of a long prompt can be slow. */
  firstTokenTimeoutSecs: seconds(300),
  /** How long a starting llama-server may answer 503 (loading) before it is given up. */
  loadTimeoutSecs: seconds(600),
  /** How long probes and health checks wait for an answer. */
  probeTimeoutSecs: seconds(5),
});
export type LlamaCppEngineConfig = z.output<typeof LlamaCppEngineConfig>;
export type LlamaCppEngineConfigInput = z.input<typeof LlamaCppEngineConfig>;

/** Table keys whose values are credentials: mask them in `studio-worker config`, never log them. */
export const LLAMA_CPP_SECRET_KEYS = ['apiKey'] as const satisfies readonly (keyof LlamaCppEngineConfig)[];

export type ResolvedMode = { mode: LlamaCppMode } | { mode: 'unconfigured'; reason: string };

/** Which backend the table asks for; a contradictory table is reported, never guessed at. */
export function resolveMode(config: LlamaCppEngineConfig): ResolvedMode {
  if (config.mode === 'server' && config.serverUrl === undefined) {
    return { mode: 'unconfigured', reason: 'mode = "server" needs server_url, e.g. server_url = "http://127.0.0.1:8081/v1" in [engines.llama-cpp]' };
  }
  if (config.mode !== undefined) return { mode: config.mode };
  if (config.serverUrl !== undefined && config.llamaServer !== undefined) {
    return {
      mode: 'unconfigured',
      reason: 'both server_url and llama_server are set in [engines.llama-cpp]: remove one, or choose with mode = "server" or mode = "subprocess"',
    };
  }
  return { mode: config.serverUrl !== undefined ? 'server' : 'subprocess' };
}
