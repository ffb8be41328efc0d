// The original (Rust) studio-worker's wire types, written from /work/shared/reference/original-spec.md
// and NOT from @studio-worker/protocol, so they cannot drift with us. They model its serde structs:
// - required fields are required (no serde default: `cliDefaults.cfgScale/steps/width/height`,
//   `offer.claim.task` and `.modelSource`, §4.4 "JobOfferClaim", "ModelSource");
// - closed enums (`ModelSource.engine`, `ModelFile.role`, `TaskKind`, `WorkerErrorCode`, §4.2, §4.4);
// - integer ranges: u32 (steps, width, height, maxTokens …) and u64 (seed, approxBytes);
// - `Option<T>` fields: absent or null (§4 "explicit null is accepted on input");
// - the frame enum is tagged by `type` and knows only the six studio → worker variants (§4.2); an
//   unknown type is a parse error that ends the session (§3.2 "Reader", §10.22).
// Deliberately stricter than serde's default in one respect: unknown object keys are refused
// (z.strictObject), so these tests also prove that no extension field of ours reaches a peer
// that did not announce the matching protocolFeature.
import { z } from 'zod';

const u32 = z.number().int().min(0).max(4_294_967_295);
/** u64 as JSON can carry it exactly (zod's int() is the safe-integer range). */
const u64 = z.number().int().min(0);
const f32 = z.number();
const opt = <T extends z.ZodType>(schema: T) => schema.nullish();

/** §4.4 TaskKind. */
export const ORIGINAL_TASK_KINDS = ['image', 'llm', 'audio_stt', 'audio_tts', 'video'] as const;
const TaskKind = z.enum(ORIGINAL_TASK_KINDS);

// ------------------------------------------------------------ §4.4 Task (tag `kind`, snake_case)
const ImageTask = z.strictObject({
  kind: z.literal('image'),
  prompt: z.string(),
  negativePrompt: opt(z.string()),
  initImageUrl: opt(z.string()),
  maskUrl: opt(z.string()),
  refImageUrl: opt(z.string()),
  denoise: opt(f32),
  cfgScale: opt(f32),
  samplingMethod: opt(z.string()),
  width: u32.optional(), // serde default 512
  height: u32.optional(), // serde default 512
  steps: u32.optional(), // serde default 20
  seed: opt(u64),
  ext: z.string().optional(), // serde default "webp"
});
const LlmTask = z.strictObject({
  kind: z.literal('llm'),
  messages: z.array(z.strictObject({ role: z.string(), content: z.string() })),
  system: opt(z.string()),
  maxTokens: u32.optional(),
  temperature: f32.optional(),
  topP: opt(f32),
  stop: opt(z.array(z.string())),
  jsonSchema: opt(z.unknown()),
  reasoning: opt(z.string()),
  chatTemplateKwargs: opt(z.record(z.string(), z.unknown())),
});
const SttTask = z.strictObject({
  kind: z.literal('audio_stt'),
  inputUrl: z.string(),
  language: opt(z.string()),
  translate: opt(z.boolean()),
  prompt: opt(z.string()),
  vad: opt(z.boolean()),
  timestamps: opt(z.enum(['segment', 'word'])),
});
const TtsTask = z.strictObject({
  kind: z.literal('audio_tts'),
  text: z.string(),
  voice: z.string().optional(),
  speed: opt(f32),
  language: opt(z.string()),
  ext: z.string().optional(),
});
const VideoTask = z.strictObject({
  kind: z.literal('video'),
  prompt: z.string(),
  negativePrompt: opt(z.string()),
  initImageUrl: opt(z.string()),
  seconds: f32.optional(),
  fps: opt(u32),
  width: u32.optional(),
  height: u32.optional(),
  ext: z.string().optional(),
});
export const OriginalTask = z.discriminatedUnion('kind', [ImageTask, LlmTask, SttTask, TtsTask, VideoTask]);
export type OriginalTask = z.infer<typeof OriginalTask>;

// ------------------------------------------------------------ §4.4 ModelSource
export const ORIGINAL_ENGINES = ['sd-cpp', 'llama-cpp', 'onnx', 'parakeet', 'synthetic'] as const;
export const ORIGINAL_ROLES = ['diffusion-model', 'text-encoder', 'text-encoder-vision', 'vae', 'lora', 'model'] as const;
const ModelFile = z.strictObject({
  role: z.enum(ORIGINAL_ROLES),
  url: z.string(),
  filename: z.string(),
  approxBytes: opt(u64),
  sha256: opt(z.string()),
});
const CliDefaults = z.strictObject({
  cfgScale: f32,
  steps: u32,
  width: u32,
  height: u32,
  samplingMethod: opt(z.string()),
  flowShift: opt(f32),
  zeroCondT: opt(z.boolean()),
  offloadToCpu: opt(z.boolean()),
  contextSize: opt(u32),
  chatTemplateKwargs: opt(z.record(z.string(), z.unknown())),
});
const ModelSource = z.strictObject({
  engine: z.enum(ORIGINAL_ENGINES),
  files: z.array(ModelFile),
  cliDefaults: CliDefaults,
});

// ------------------------------------------------------------ §4.4 JobOfferClaim (task + modelSource required)
const JobOfferClaim = z.strictObject({
  jobId: z.string(),
  gameId: z.string(),
  assetName: z.string(),
  model: z.string(),
  vramGbEstimate: z.number(),
  task: OriginalTask,
  modelSource: ModelSource,
});
export type OriginalClaim = z.infer<typeof JobOfferClaim>;

// ------------------------------------------------------------ §4.2 studio → worker frames
export const ORIGINAL_ERROR_CODES = ['auth_failed', 'protocol_violation', 'duplicate_worker', 'worker_deleted', 'internal_error'] as const;
export const OriginalStudioFrame = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('welcome'), workerId: z.string(), serverTime: z.string() }),
  z.strictObject({ type: z.literal('offer'), claim: JobOfferClaim }),
  z.strictObject({ type: z.literal('heartbeatAck') }),
  z.strictObject({ type: z.literal('completeAck'), jobId: z.string() }),
  z.strictObject({ type: z.literal('failAck'), jobId: z.string() }),
  z.strictObject({ type: z.literal('error'), code: z.enum(ORIGINAL_ERROR_CODES), message: z.string() }),
]);
export type OriginalStudioFrame = z.infer<typeof OriginalStudioFrame>;
export const ORIGINAL_STUDIO_FRAME_TYPES = ['welcome', 'offer', 'heartbeatAck', 'completeAck', 'failAck', 'error'] as const;

/**
 * Read one text frame as the original's reader does (§3.2): anything that does not parse, including
 * an unknown `type`, is a protocol error that ends the session. Answers the frame or the error.
 */
export function parseAsOriginal(text: string): { ok: true; frame: OriginalStudioFrame } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: 'frame is not JSON' };
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !(ORIGINAL_STUDIO_FRAME_TYPES as readonly string[]).includes(type)) {
    return { ok: false, error: `unknown variant \`${String(type)}\`` };
  }
  const parsed = OriginalStudioFrame.safeParse(value);
  if (!parsed.success) {
    return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
  }
  return { ok: true, frame: parsed.data };
}

// ------------------------------------------------------------ §4.4 WorkerCapabilities, §4.1 worker → studio
export const OriginalCapabilities = z.strictObject({
  machineName: z.string(),
  username: z.string(),
  agentVersion: z.string(),
  engine: z.string(),
  vramTotalGb: z.number(),
  vramThresholdGb: z.number(),
  autoEnabled: z.boolean(),
  autoStart: z.boolean(),
  autoUpdate: opt(z.boolean()),
  startMinimised: opt(z.boolean()),
  onlyWhenIdle: opt(z.boolean()),
  userPresence: opt(z.enum(['idle', 'active'])),
  supportedModels: z.array(z.string()),
  taskKinds: z.array(TaskKind),
  supportedModelsPerKind: z.partialRecord(TaskKind, z.array(z.string())),
});
export type OriginalCapabilities = z.infer<typeof OriginalCapabilities>;

const LogEntry = z.strictObject({ ts: z.string(), level: z.string(), category: z.string(), message: z.string(), jobId: opt(z.string()) });
/** §4.1: what the original sends. Used to check that our fixtures and the test peer speak it exactly. */
export const OriginalWorkerFrame = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('hello'), authToken: z.string(), capabilities: OriginalCapabilities }),
  z.strictObject({ type: z.literal('heartbeat'), capabilities: OriginalCapabilities, currentJobId: opt(z.string()) }),
  z.strictObject({ type: z.literal('accept'), jobId: z.string() }),
  z.strictObject({ type: z.literal('reject'), jobId: z.string(), reason: z.string(), code: opt(z.enum(['busy', 'paused'])) }),
  z.strictObject({ type: z.literal('completeJson'), jobId: z.string(), result: z.unknown(), prompt: opt(z.string()) }),
  z.strictObject({ type: z.literal('fail'), jobId: z.string(), error: z.string(), retryable: z.boolean() }),
  z.strictObject({ type: z.literal('logBatch'), entries: z.array(LogEntry) }),
  z.strictObject({ type: z.literal('readyForMore') }),
]);
export type OriginalWorkerFrame = z.infer<typeof OriginalWorkerFrame>;

// ------------------------------------------------------------ §3.1, §4.5 HTTP bodies (serde: unknown keys ignored)
export const OriginalRegisterCreated = z.object({ requestId: z.string(), status: z.literal('pending') });
export const OriginalRegistrationPoll = z.discriminatedUnion('status', [
  z.object({ status: z.literal('pending') }),
  z.object({ status: z.literal('approved'), workerId: z.string(), authToken: z.string() }),
  z.object({ status: z.literal('rejected'), reason: z.string().optional() }),
]);
