import { z } from 'zod';
import { optional } from './optional.ts';

/**
 * Engines a ModelSource can name. The first five are the original's; the rest are ours. A job runs
 * only on the engine its ModelSource names (strict routing, DESIGN.md rule 5).
 */
export const KNOWN_ENGINES = [
  'sd-cpp',
  'llama-cpp',
  'onnx',
  'parakeet',
  'synthetic',
  'comfyui',
  'a1111',
  'openai',
] as const;
export type KnownEngine = (typeof KNOWN_ENGINES)[number];

/**
 * The engines the original worker's parser knows (original-spec §4.4: `ModelSource.engine` is a
 * closed enum there). An offer naming any other engine ends an original worker's session, so such
 * jobs go only to peers with the `extended-offers` feature.
 */
export const ORIGINAL_ENGINES = ['sd-cpp', 'llama-cpp', 'onnx', 'parakeet', 'synthetic'] as const satisfies readonly KnownEngine[];

/**
 * An engine name on the wire. Any lowercase name parses, so a worker that meets an engine it has
 * never heard of rejects the offer as `unsupported` instead of treating the frame as malformed.
 */
export const EngineName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'an engine name such as "sd-cpp" or "synthetic"');
export type EngineName = z.infer<typeof EngineName>;

export const FILE_ROLES = [
  'diffusion-model',
  'text-encoder',
  'text-encoder-vision',
  'vae',
  'lora',
  'model',
  'workflow',
  'mmproj',
  // Split text encoders (Flux.1, SD3, Chroma, Wan): sd.cpp's --clip_l, --clip_g, --t5xxl. Not the
  // original's: a model that has one is offered only to workers announcing 'split-text-encoders'.
  'clip-l',
  'clip-g',
  't5xxl',
] as const;
export const FileRole = z.enum(FILE_ROLES);

/** The file roles the original worker's parser knows (original-spec §4.4); `workflow` and `mmproj` are ours. */
export const ORIGINAL_FILE_ROLES = ['diffusion-model', 'text-encoder', 'text-encoder-vision', 'vae', 'lora', 'model'] as const satisfies readonly FileRole[];
export type FileRole = z.infer<typeof FileRole>;

/** Suffixes the worker keeps next to model files: partial downloads and verification records. */
export const RESERVED_FILE_SUFFIXES = ['.part', '.verified'] as const;

/**
 * Why a model file name is not a plain file name (original-spec §3.4: no directories, no `..`, not
 * absolute), or undefined when it is. One rule for the studio's registry and the worker's downloads.
 */
export function plainFileNameProblem(filename: string): string | undefined {
  if (filename.length === 0) return 'it is empty';
  if (filename.includes('/') || filename.includes('\\')) return 'it contains a path separator ("/" or "\\")';
  if (filename.includes('..')) return 'it contains ".."';
  if (filename === '.') return 'it is "."';
  if (filename.includes('\0')) return 'it contains a NUL byte';
  if (/^[A-Za-z]:/.test(filename)) return 'it is an absolute path';
  if (new TextEncoder().encode(filename).length > 255) return 'it is longer than 255 bytes';
  if (RESERVED_FILE_SUFFIXES.some((suffix) => filename.endsWith(suffix))) {
    return `names ending in "${RESERVED_FILE_SUFFIXES.join('" or "')}" are reserved for partial downloads and verification records`;
  }
  return undefined;
}

export const PlainFileName = z.string().superRefine((name, ctx) => {
  const problem = plainFileNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: `must be a plain file name, but ${problem}` });
});

export const ModelFile = z.object({
  role: FileRole,
  url: z.string().min(1),
  filename: PlainFileName,
  approxBytes: optional(z.number().int().nonnegative()),
  sha256: optional(z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex characters')),
});
export type ModelFile = z.infer<typeof ModelFile>;

/**
 * Engine defaults for a model. Known fields are typed; engine-specific extras (a ComfyUI workflow's
 * node ids, say) pass through untouched.
 */
export const CliDefaults = z.looseObject({
  cfgScale: optional(z.number()),
  steps: optional(z.number().int().positive()),
  width: optional(z.number().int().positive()),
  height: optional(z.number().int().positive()),
  samplingMethod: optional(z.string()),
  flowShift: optional(z.number()),
  zeroCondT: optional(z.boolean()),
  offloadToCpu: optional(z.boolean()),
  contextSize: optional(z.number().int().positive()),
  chatTemplateKwargs: optional(z.record(z.string(), z.unknown())),
});
export type CliDefaults = z.infer<typeof CliDefaults>;

/**
 * The cliDefaults keys the original worker reads (original-spec §4.4). `cfgScale`, `steps`, `width`
 * and `height` are required there (no serde default): an offer without them ends its session.
 */
export const ORIGINAL_CLI_DEFAULT_KEYS = ['cfgScale', 'steps', 'width', 'height', 'samplingMethod', 'flowShift', 'zeroCondT', 'offloadToCpu', 'contextSize', 'chatTemplateKwargs'] as const;
export const REQUIRED_CLI_DEFAULT_KEYS = ['cfgScale', 'steps', 'width', 'height'] as const;
export type RequiredCliDefaults = { [K in (typeof REQUIRED_CLI_DEFAULT_KEYS)[number]]: number };

/**
 * What an engine uses when a model gives no default: sd-cpp's own fallbacks (original-spec §6.3:
 * 1024², 8 steps, cfg 1.0); for the other original engines (synthetic, onnx: fixed 512²; llama-cpp,
 * parakeet: not image engines, the numbers are unused) 512², 20 steps ("not chosen"), cfg 1.0.
 */
export function engineCliDefaults(engine: string): RequiredCliDefaults {
  if (engine === 'sd-cpp') return { cfgScale: 1, steps: 8, width: 1024, height: 1024 };
  return { cfgScale: 1, steps: 20, width: 512, height: 512 };
}

/** True for engines whose models an original worker can be offered. */
export function isOriginalEngine(engine: string): boolean {
  return (ORIGINAL_ENGINES as readonly string[]).includes(engine);
}

/**
 * The source with the four numbers the original requires filled from the engine's defaults where
 * the model gives none. Only for original engines: a model on one of our engines is never offered
 * to an original worker, and filling would override its server's own defaults (an OpenAI size).
 */
export function withEngineDefaults<S extends { engine: string; cliDefaults: CliDefaults }>(source: S): S {
  if (!isOriginalEngine(source.engine)) return source;
  const fallback = engineCliDefaults(source.engine);
  const cliDefaults: CliDefaults = { ...source.cliDefaults };
  for (const key of REQUIRED_CLI_DEFAULT_KEYS) {
    const value = cliDefaults[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || (key !== 'cfgScale' && value <= 0)) cliDefaults[key] = fallback[key];
  }
  return { ...source, cliDefaults };
}

/** Where a model's files come from and which engine runs it. The studio is the source of truth. */
export const ModelSource = z.object({
  engine: EngineName,
  files: z.array(ModelFile).default([]),
  cliDefaults: CliDefaults.default({}),
});
export type ModelSource = z.infer<typeof ModelSource>;
export type ModelSourceInput = z.input<typeof ModelSource>;
