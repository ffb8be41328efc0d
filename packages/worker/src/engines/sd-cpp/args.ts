import { basename, dirname, extname } from 'node:path';
import type { CliDefaults, ImageTask } from '@studio-worker/protocol';
import { EngineFailure, filesOfRole, type EngineJob, type ResolvedModelFile } from '../engine.ts';

/** The task's own "steps" default, which means "the caller did not choose" (original-spec §6.3). */
const UNCHOSEN_STEPS = 20;
const FALLBACK_SIZE = 1024;
const FALLBACK_STEPS = 8;
const FALLBACK_CFG = 1.0;
/** sd-cli's own --strength default, also ours when the task gives no denoise. */
export const DEFAULT_STRENGTH = 0.75;

/** The generation values after precedence (original-spec §6.3, "Value precedence"). */
export interface GenerationValues {
  width: number;
  height: number;
  steps: number;
  cfgScale: number;
  samplingMethod?: string;
  seed?: number;
}

/**
 * width/height: task if > 0, else cliDefaults, else 1024. steps: task if > 0 and ≠ 20, else
 * cliDefaults.steps, else 8. cfg: task if > 0, else cliDefaults if > 0, else 1.0. sampler: task,
 * else cliDefaults. Seed only when the task gives one.
 */
export function resolveGenerationValues(task: ImageTask, defaults: CliDefaults): GenerationValues {
  const positive = (value: number | undefined): value is number => typeof value === 'number' && Number.isFinite(value) && value > 0;
  const pick = (taskValue: number | undefined, defaultValue: number | undefined, fallback: number) =>
    positive(taskValue) ? taskValue : positive(defaultValue) ? defaultValue : fallback;
  const values: GenerationValues = {
    width: pick(task.width, defaults.width, FALLBACK_SIZE),
    height: pick(task.height, defaults.height, FALLBACK_SIZE),
    steps: positive(task.steps) && task.steps !== UNCHOSEN_STEPS ? task.steps : positive(defaults.steps) ? defaults.steps : FALLBACK_STEPS,
    cfgScale: pick(task.cfgScale, defaults.cfgScale, FALLBACK_CFG),
  };
  const sampler = nonEmpty(task.samplingMethod) ?? nonEmpty(defaults.samplingMethod);
  if (sampler !== undefined) values.samplingMethod = sampler;
  if (task.seed !== undefined) values.seed = task.seed;
  return values;
}

/** Model-level options: they shape how the model is loaded, so a resident server is keyed by them. */
export interface ModelOptions {
  diffusionFa: boolean;
  extraArgs: readonly string[];
  /**
   * The long flags the installed binary lists in its `--help` (see help.ts); undefined when that is
   * not known. Optional switches it lacks are left out; a model file it cannot take fails the job.
   */
  supportedFlags?: ReadonlySet<string>;
}

/** The file roles that name a text encoder file, and sd.cpp's flag for each. */
const ENCODER_FLAGS = [
  ['text-encoder', '--llm'],
  ['text-encoder-vision', '--llm_vision'],
  ['clip-l', '--clip_l'],
  ['clip-g', '--clip_g'],
  ['t5xxl', '--t5xxl'],
] as const;

/**
 * The flags that say which model to load: `--diffusion-model` (or `--model` when the source only
 * has a full checkpoint), `--vae`, the text encoders (`--llm`, `--llm_vision`, `--clip_l`,
 * `--clip_g`, `--t5xxl`), `--lora-model-dir`. Shared by sd-cli and sd-server. A file whose flag
 * the installed build lacks fails the job: without it the model would load wrong or not at all.
 */
export function modelFileArgs(job: Pick<EngineJob, 'files'>, supportedFlags?: ReadonlySet<string>): string[] {
  const first = (role: Parameters<typeof filesOfRole>[1]) => filesOfRole(job, role)[0]?.path;
  const diffusion = first('diffusion-model');
  const checkpoint = first('model');
  const args: string[] = [];
  if (diffusion !== undefined) args.push('--diffusion-model', diffusion);
  else if (checkpoint !== undefined) args.push('--model', checkpoint);
  else {
    throw new EngineFailure('bad_input', 'the model source lists no "diffusion-model" or "model" file, so sd.cpp has nothing to load; fix the model in the studio registry', {
      retryable: false,
    });
  }
  const vae = first('vae');
  if (vae !== undefined) args.push('--vae', vae);
  for (const [role, flag] of ENCODER_FLAGS) {
    const path = first(role);
    if (path === undefined) continue;
    if (supportedFlags !== undefined && !supportedFlags.has(flag)) {
      throw new EngineFailure('engine_unavailable', `this sd.cpp build has no ${flag} (its --help does not list it), so the "${role}" file cannot be loaded; install a newer sd.cpp`, {
        retryable: false,
      });
    }
    args.push(flag, path);
  }
  const lora = first('lora');
  // The runner puts every file of a model in one directory; sd.cpp finds <lora:name:w> there.
  if (lora !== undefined) args.push('--lora-model-dir', dirname(lora));
  return args;
}

/**
 * Per-model switches from cliDefaults, in the original's order, then ours. zeroCondT is
 * `--model-args qwen_image_zero_cond_t=true` (sd.cpp removed `--qwen-image-zero-cond-t` in
 * bb849711). A switch the installed build does not list is left out: it tunes, it is not needed to load.
 */
export function modelSwitchArgs(defaults: CliDefaults, options: ModelOptions): string[] {
  const args: string[] = [];
  const add = (flag: string, ...values: string[]) => {
    if (options.supportedFlags === undefined || options.supportedFlags.has(flag)) args.push(flag, ...values);
  };
  if (typeof defaults.flowShift === 'number' && Number.isFinite(defaults.flowShift)) add('--flow-shift', formatNumber(defaults.flowShift));
  if (defaults.zeroCondT === true) add('--model-args', 'qwen_image_zero_cond_t=true');
  if (defaults.offloadToCpu === true) add('--offload-to-cpu');
  if (options.diffusionFa) add('--diffusion-fa');
  return args;
}

/** The optional switches modelSwitchArgs may emit: what the engine status reports a build as lacking. */
export const OPTIONAL_SWITCHES = ['--flow-shift', '--model-args', '--offload-to-cpu', '--diffusion-fa', '--clip_l', '--clip_g', '--t5xxl', '--llm', '--llm_vision', '--preview'] as const;

/** Local copies of the task's input images (already fetched and sniffed). */
export interface InputImages {
  init?: string;
  mask?: string;
  ref?: string;
}

/**
 * sd-cli's argv for one job (original-spec §6.3 `build_sdcli_args`): model files, prompt, then
 * either reference mode (`-r`) or img2img (`--init-img --strength`), each with an optional
 * `--mask`, then the sampling values, the output path and the per-model switches.
 */
export function buildSdCliArgs(job: Pick<EngineJob, 'files' | 'source'>, task: ImageTask, inputs: InputImages, outputPath: string, options: ModelOptions): string[] {
  const values = resolveGenerationValues(task, job.source.cliDefaults);
  const args = modelFileArgs(job, options.supportedFlags);
  args.push('-p', task.prompt);
  if (nonEmpty(task.negativePrompt) !== undefined) args.push('--negative-prompt', task.negativePrompt as string);
  if (inputs.ref !== undefined) {
    args.push('-r', inputs.ref);
    if (inputs.mask !== undefined) args.push('--mask', inputs.mask);
  } else if (inputs.init !== undefined) {
    args.push('--init-img', inputs.init, '--strength', formatNumber(task.denoise ?? DEFAULT_STRENGTH));
    if (inputs.mask !== undefined) args.push('--mask', inputs.mask);
  }
  args.push('--cfg-scale', formatNumber(values.cfgScale), '--steps', String(values.steps), '-W', String(values.width), '-H', String(values.height), '-o', outputPath);
  if (values.seed !== undefined) args.push('--seed', String(values.seed));
  if (values.samplingMethod !== undefined) args.push('--sampling-method', values.samplingMethod);
  args.push(...modelSwitchArgs(job.source.cliDefaults, options), ...options.extraArgs);
  return args;
}

/**
 * sd-cli's live preview flags (examples/cli/main.cpp: `--preview`, `--preview-path`; written every
 * `--preview-interval` steps, default 1), or none when off or when the build does not list them.
 */
export function previewArgs(method: 'none' | 'proj' | 'tae' | 'vae', path: string, supportedFlags?: ReadonlySet<string>): string[] {
  if (method === 'none') return [];
  if (supportedFlags !== undefined && !(supportedFlags.has('--preview') && supportedFlags.has('--preview-path'))) return [];
  return ['--preview', method, '--preview-path', path];
}

/** sd-server's argv for one model: the same model flags and switches, listening on loopback. */
export function buildSdServerArgs(job: Pick<EngineJob, 'files' | 'source'>, options: ModelOptions): string[] {
  return [...modelFileArgs(job, options.supportedFlags), ...modelSwitchArgs(job.source.cliDefaults, options), ...options.extraArgs];
}

export function listenArgs(port: number): string[] {
  return ['--listen-ip', '127.0.0.1', '--listen-port', String(port)];
}

/**
 * The body of sd-server's A1111-compatible `/sdapi/v1/txt2img` / `img2img` request for one job
 * (examples/server/api.md). Images are base64. Model-level values (flow shift …) were given on the
 * server's command line.
 */
export interface SdApiRequest {
  route: '/sdapi/v1/txt2img' | '/sdapi/v1/img2img';
  body: Record<string, unknown>;
}

export function buildSdApiRequest(task: ImageTask, defaults: CliDefaults, images: { init?: Uint8Array; mask?: Uint8Array; ref?: Uint8Array }, loraFiles: readonly ResolvedModelFile[] = []): SdApiRequest {
  const values = resolveGenerationValues(task, defaults);
  const { prompt, lora } = loraFromPrompt(task.prompt, loraFiles);
  const body: Record<string, unknown> = {
    prompt,
    negative_prompt: task.negativePrompt ?? '',
    width: values.width,
    height: values.height,
    steps: values.steps,
    cfg_scale: values.cfgScale,
    batch_size: 1,
  };
  if (values.seed !== undefined) body.seed = values.seed;
  if (values.samplingMethod !== undefined) body.sampler_name = values.samplingMethod;
  if (lora.length > 0) body.lora = lora;
  if (images.ref !== undefined) {
    // Reference mode: sdapi takes reference images as extra_images (sd-cli -r). The mask has no
    // meaning without an init image, as with sd-cli.
    body.extra_images = [base64(images.ref)];
    return { route: '/sdapi/v1/txt2img', body };
  }
  if (images.init !== undefined) {
    body.init_images = [base64(images.init)];
    body.denoising_strength = task.denoise ?? DEFAULT_STRENGTH;
    if (images.mask !== undefined) body.mask = base64(images.mask);
    return { route: '/sdapi/v1/img2img', body };
  }
  return { route: '/sdapi/v1/txt2img', body };
}

const LORA_TAG = /<lora:([^:>]+):([^>]*)>/g;

/**
 * sd-server does not read `<lora:name:w>` tags in a prompt (its server APIs disable prompt LoRA
 * parsing, examples/server/routes_sdapi.cpp at 97d29908): it takes `lora: [{path, multiplier}]`,
 * `path` relative to --lora-model-dir. The tags are cut out of the prompt and each names one of
 * the model's lora files by file name or stem, as sd-cli finds them.
 */
export function loraFromPrompt(prompt: string, loraFiles: readonly ResolvedModelFile[]): { prompt: string; lora: Array<{ path: string; multiplier: number }> } {
  const lora: Array<{ path: string; multiplier: number }> = [];
  for (const match of prompt.matchAll(LORA_TAG)) {
    const name = (match[1] ?? '').trim();
    const multiplier = Number(match[2]);
    if (!Number.isFinite(multiplier)) {
      throw new EngineFailure('bad_input', `the prompt's LoRA tag "${match[0]}" has no number as its weight; write <lora:name:0.8>`, { retryable: false });
    }
    const file = loraFiles.find((candidate) => candidate.filename === name || basename(candidate.filename, extname(candidate.filename)) === name);
    if (file === undefined) {
      const known = loraFiles.map((candidate) => basename(candidate.filename, extname(candidate.filename)));
      throw new EngineFailure('bad_input', `the prompt names LoRA "${name}" but the model has no such lora file (${known.length === 0 ? 'it has none' : `it has ${known.join(', ')}`})`, {
        retryable: false,
      });
    }
    lora.push({ path: file.filename, multiplier });
  }
  return { prompt: lora.length === 0 ? prompt : prompt.replace(LORA_TAG, '').replace(/\s{2,}/g, ' ').trim(), lora };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function nonEmpty(value: string | undefined): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** Numbers as sd-cli reads them: no exponent, no trailing zeros ("0.75", "1", "3"). */
export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toFixed(6)));
}
