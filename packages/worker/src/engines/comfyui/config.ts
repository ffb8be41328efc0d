import { z } from 'zod';
import { isHttpUrl } from '../../platform/url-policy.ts';

export const DEFAULT_COMFYUI_URL = 'http://127.0.0.1:8188';

const seconds = (fallback: number) => z.number().positive().default(fallback);

/**
 * The `[engines.comfyui]` table of config.toml (camelCase here, snake_case in the file). Every key
 * is optional. Timings are seconds and may be fractional (tests use tenths).
 */
export const ComfyuiEngineConfig = z.object({
  /** The ComfyUI server: its HTTP base; the WebSocket is the same host under `/ws`. */
  url: z.string().refine(isHttpUrl, 'an http or https URL such as "http://127.0.0.1:8188"').default(DEFAULT_COMFYUI_URL),
  /**
   * Where `cliDefaults.workflowName` templates live (`<name>.json`). `~/` is the home directory;
   * a relative path is read from the worker's models_root.
   */
  workflowsDir: z.string().min(1).optional(),
  /** The WebSocket said nothing for this long while our prompt was queued or running: ask over HTTP. */
  silenceTimeoutSecs: seconds(60),
  /** Our running prompt reported no event (node change, sampler step) for this long: give up on it. */
  stepTimeoutSecs: seconds(120),
  /** `POST /free` after every this many jobs, against VRAM creep; 0 never frees. */
  freeEveryJobs: z.number().int().min(0).default(10),
  /** One HTTP request (not a generation) may take this long. */
  requestTimeoutSecs: seconds(30),
  /** After ComfyUI says the prompt is done, `/history/{id}` may stay `{}` for a moment; wait this long at most. */
  historyWaitSecs: seconds(10),
});
export type ComfyuiEngineConfig = z.output<typeof ComfyuiEngineConfig>;
export type ComfyuiEngineConfigInput = z.input<typeof ComfyuiEngineConfig>;

/** What each key allows, for config error messages; keys are the snake_case names in config.toml. */
export const COMFYUI_ALLOWED_VALUES: Readonly<Record<string, string>> = {
  'engines.comfyui.url': 'an http or https URL such as "http://127.0.0.1:8188"',
  'engines.comfyui.workflows_dir': 'a directory of API-format workflow .json files',
  'engines.comfyui.silence_timeout_secs': 'a number of seconds > 0',
  'engines.comfyui.step_timeout_secs': 'a number of seconds > 0',
  'engines.comfyui.free_every_jobs': 'a whole number ≥ 0 (0 = never)',
  'engines.comfyui.request_timeout_secs': 'a number of seconds > 0',
  'engines.comfyui.history_wait_secs': 'a number of seconds > 0',
};
