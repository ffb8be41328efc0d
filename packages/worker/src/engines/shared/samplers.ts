import { EngineFailure } from '../engine.ts';

/**
 * The names `GET /sdapi/v1/samplers` lists (`[{name, aliases, options}]`, A1111's
 * modules/api/api.py and sd-server's routes_sdapi.cpp), names and aliases, or undefined when the
 * answer is not such a list.
 */
export function samplerNames(json: unknown): string[] | undefined {
  if (!Array.isArray(json)) return undefined;
  const names: string[] = [];
  for (const entry of json) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { name, aliases } = entry as { name?: unknown; aliases?: unknown };
    if (typeof name === 'string') names.push(name);
    if (Array.isArray(aliases)) for (const alias of aliases) if (typeof alias === 'string') names.push(alias);
  }
  return names;
}

/**
 * A1111 1.9+ (modules/sd_samplers.py get_sampler_and_scheduler) and sd-server (routes_sdapi.cpp
 * get_sdapi_sample_method) silently replace a sampler name they do not know with their default, so
 * the image would come back made with another sampler. Fail first instead, saying what is there.
 */
/** A1111's scheduler labels and names (modules/sd_schedulers.py, 1.9/1.10), which may end a sampler name. */
export const A1111_SCHEDULERS = ['Automatic', 'Uniform', 'Karras', 'Exponential', 'Polyexponential', 'SGM Uniform', 'KL Optimal', 'Align Your Steps', 'Simple', 'Normal', 'DDIM', 'Beta'];

export function checkSampler(server: string, sampler: string | undefined, known: readonly string[] | undefined, schedulerSuffixes: readonly string[] = []): void {
  if (sampler === undefined || known === undefined || known.length === 0) return;
  const wanted = sampler.toLowerCase();
  // A1111 also takes "<sampler> <scheduler>" ("DPM++ 2M Karras") and splits the scheduler off.
  const suffix = schedulerSuffixes.find((label) => wanted.endsWith(` ${label.toLowerCase()}`));
  const base = suffix === undefined ? wanted : wanted.slice(0, -(suffix.length + 1));
  if (known.some((name) => name.toLowerCase() === wanted || name.toLowerCase() === base)) return;
  const listed = [...new Set(known)].slice(0, 30).join(', ');
  throw new EngineFailure('bad_input', `${server} has no sampler "${sampler}" (it would silently use its default instead); it has: ${listed}. Fix the task's samplingMethod or the model's cliDefaults.samplingMethod`, {
    retryable: false,
  });
}
