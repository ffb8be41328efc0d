import { TASK_KINDS, type Task, type TaskKind } from '@studio-worker/protocol';
import type { Engine, EngineAvailability, EngineContext, EngineJob, EngineResult } from '../engine.ts';
import { renderSyntheticWav } from './audio.ts';
import { requestedDelayMs, simulateGeneration, throwIfAborted } from './pacing.ts';
import { renderSynthetic } from './render.ts';
import { syntheticChatCompletion, syntheticTranscript } from './text.ts';

/** The suffix of each kind's own model id, e.g. audio_stt → "synthetic-stt". */
const MODEL_SUFFIX: Record<TaskKind, string> = {
  image: 'image',
  llm: 'llm',
  audio_stt: 'stt',
  audio_tts: 'tts',
  video: 'video',
};

/**
 * The deterministic engine for CI and the embedded default (original-spec §6.2): every output is
 * derived from the SHA-256 of its input, and images carry a visible "SYNTHETIC" label. It is only
 * ever used for jobs whose ModelSource names "synthetic" — never as a fallback.
 */
export class SyntheticEngine implements Engine {
  readonly name = 'synthetic';
  readonly kinds: readonly TaskKind[] = TASK_KINDS;

  async probe(): Promise<EngineAvailability> {
    return { available: true, detail: 'deterministic placeholder outputs' };
  }

  advertisedModels(): Partial<Record<TaskKind, readonly string[]>> {
    const models: Partial<Record<TaskKind, readonly string[]>> = {};
    for (const kind of TASK_KINDS) models[kind] = ['synthetic', `synthetic-${MODEL_SUFFIX[kind]}`];
    return models;
  }

  async run(job: EngineJob, ctx: EngineContext): Promise<EngineResult> {
    await simulateGeneration(requestedDelayMs(job.source?.cliDefaults), ctx);
    const result = await produce(job.task, ctx.signal);
    // Encoding a large image takes a moment; an abort during it must still win over the result.
    throwIfAborted(ctx.signal);
    return result;
  }
}

async function produce(task: Task, signal: AbortSignal): Promise<EngineResult> {
  switch (task.kind) {
    case 'image': {
      // The original's size when the task gives none.
      const image = await renderSynthetic({ kind: 'image', prompt: task.prompt, width: task.width ?? 512, height: task.height ?? 512, ext: task.ext }, signal);
      return { type: 'file', bytes: image.bytes, ext: image.ext };
    }
    case 'llm':
      return { type: 'json', json: syntheticChatCompletion(task.messages) };
    case 'audio_stt':
      return { type: 'json', json: syntheticTranscript(task.inputUrl, task.language) };
    case 'audio_tts':
      return { type: 'file', bytes: renderSyntheticWav(task.text), ext: 'wav' };
    case 'video': {
      const video = await renderSynthetic({ kind: 'video', prompt: task.prompt, width: task.width, height: task.height, ext: 'webp' }, signal);
      return { type: 'file', bytes: video.bytes, ext: video.ext };
    }
  }
}

export function createSyntheticEngine(): Engine {
  return new SyntheticEngine();
}
