import { z } from 'zod';
import { optional } from './optional.ts';

export const TASK_KINDS = ['image', 'llm', 'audio_stt', 'audio_tts', 'video'] as const;
export const TaskKind = z.enum(TASK_KINDS);
export type TaskKind = z.infer<typeof TaskKind>;

const positiveInt = z.number().int().positive();
const dimension = z.number().int().min(16).max(8192);
/** Result file extensions an engine may produce. */
export const ResultExt = z.string().regex(/^[a-z0-9]{1,8}$/, 'a short lowercase file extension such as "webp"');

export const ImageTask = z.object({
  kind: z.literal('image'),
  prompt: z.string(),
  negativePrompt: optional(z.string()),
  /** img2img base image. */
  initImageUrl: optional(z.string()),
  /** White = editable. */
  maskUrl: optional(z.string()),
  /** Instruction-edit reference image (sd-cli `-r`). */
  refImageUrl: optional(z.string()),
  /** img2img strength (sd-cli `--strength`), 0..1. */
  denoise: optional(z.number().min(0).max(1)),
  cfgScale: optional(z.number().min(0).max(100)),
  samplingMethod: optional(z.string()),
  /**
   * Output size. Absent means "the model's default" (its `cliDefaults.width/height`, else the
   * engine's). The original defaulted to 512 here, which kept every model's own default from
   * applying; an original worker still reads an absent size as 512.
   */
  width: optional(dimension),
  height: optional(dimension),
  /** 20 means "the caller did not choose" (original-spec §6.3). */
  steps: positiveInt.max(1000).default(20),
  /**
   * u64 on the wire (the original's type): a negative seed fails the original's parser, so it is
   * refused when the job is created. Leave it out for a random seed. (zod's `int()` also keeps it a
   * safe integer, so it survives JSON exactly.)
   */
  seed: optional(z.number().int().nonnegative('seed must be 0 or more (an unsigned 64-bit number); leave it out for a random seed')),
  ext: ResultExt.default('webp'),
});
export type ImageTask = z.infer<typeof ImageTask>;

export const ChatMessage = z.object({
  role: z.string().min(1),
  content: z.string(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export const LlmTask = z.object({
  kind: z.literal('llm'),
  messages: z.array(ChatMessage).min(1),
  system: optional(z.string()),
  maxTokens: positiveInt.default(512),
  temperature: z.number().min(0).max(5).default(0.7),
  topP: optional(z.number().min(0).max(1)),
  stop: optional(z.array(z.string())),
  jsonSchema: optional(z.unknown()),
  /** A string in the original (e.g. a reasoning effort); any other JSON is refused at job creation. */
  reasoning: optional(z.string().max(200)),
  chatTemplateKwargs: optional(z.record(z.string(), z.unknown())),
});
export type LlmTask = z.infer<typeof LlmTask>;

export const SttTask = z.object({
  kind: z.literal('audio_stt'),
  inputUrl: z.string().min(1),
  language: optional(z.string()),
  translate: optional(z.boolean()),
  prompt: optional(z.string()),
  vad: optional(z.boolean()),
  timestamps: optional(z.enum(['segment', 'word'])),
});
export type SttTask = z.infer<typeof SttTask>;

export const TtsTask = z.object({
  kind: z.literal('audio_tts'),
  text: z.string(),
  voice: z.string().default('default'),
  speed: optional(z.number().positive()),
  language: optional(z.string()),
  ext: ResultExt.default('wav'),
});
export type TtsTask = z.infer<typeof TtsTask>;

export const VideoTask = z.object({
  kind: z.literal('video'),
  prompt: z.string(),
  negativePrompt: optional(z.string()),
  initImageUrl: optional(z.string()),
  seconds: z.number().positive().max(600).default(2.0),
  fps: optional(positiveInt.max(120)),
  width: dimension.default(512),
  height: dimension.default(512),
  ext: ResultExt.default('mp4'),
});
export type VideoTask = z.infer<typeof VideoTask>;

/** A job's work item, tagged by `kind` (snake_case values, camelCase fields). */
export const Task = z.discriminatedUnion('kind', [ImageTask, LlmTask, SttTask, TtsTask, VideoTask]);
export type Task = z.infer<typeof Task>;
/** What a client may send: every defaulted field may be left out. */
export type TaskInput = z.input<typeof Task>;

/**
 * The full prompt a result is filed under (original-spec §3.5 `prompt_for`): image and video use
 * the prompt, llm the content of the last message, stt the input URL, tts the text.
 */
export function promptForTask(task: Task): string {
  switch (task.kind) {
    case 'image':
    case 'video':
      return task.prompt;
    case 'llm':
      return task.messages.at(-1)?.content ?? '';
    case 'audio_stt':
      return task.inputUrl;
    case 'audio_tts':
      return task.text;
  }
}
