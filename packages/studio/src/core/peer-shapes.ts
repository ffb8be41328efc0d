import {
  encodeFrame,
  ORIGINAL_CLI_DEFAULT_KEYS,
  ORIGINAL_FILE_ROLES,
  isOriginalEngine,
  withEngineDefaults,
  type CliDefaults,
  type ModelSource,
  type StudioFrame,
  type Task,
} from '@studio-worker/protocol';
import type { OfferRow } from './job-store.ts';

/**
 * What we send a peer is shaped by what it announced (DESIGN.md "Wire compatibility"). The original
 * worker announces no `protocolFeatures`, and its parser (serde types, original-spec §4) rejects a
 * missing required field, an unknown enum value, an out-of-range integer and an unknown frame type,
 * and ends its session on any non-auth `error` frame. Every frame to a worker passes through here.
 */

/** Why a model's offers cannot be read by a peer without `extended-offers`, or undefined when they can. */
export function originalIncompatibility(source: Pick<ModelSource, 'engine' | 'files'>): string | undefined {
  if (!isOriginalEngine(source.engine)) return `the "${source.engine}" engine is not one the original worker knows`;
  const roles = [...new Set(source.files.map((f) => f.role).filter((r) => !(ORIGINAL_FILE_ROLES as readonly string[]).includes(r)))];
  if (roles.length > 0) return `its file role${roles.length > 1 ? 's' : ''} ${roles.map((r) => `"${r}"`).join(', ')} ${roles.length > 1 ? 'are' : 'is'} not known to the original worker`;
  return undefined;
}

/** The cliDefaults the original reads: its keys only, with the four required numbers. */
function originalCliDefaults(source: ModelSource): CliDefaults {
  const filled = withEngineDefaults(source).cliDefaults;
  const out: CliDefaults = {};
  for (const key of ORIGINAL_CLI_DEFAULT_KEYS) if (filled[key] !== undefined) (out as Record<string, unknown>)[key] = filled[key];
  return out;
}

/**
 * The task as the original reads it. Its image size defaults to 512 (a serde default) and beats the
 * model's own, so an absent size is filled from the model's cliDefaults, as our worker would choose.
 * Seeds and reasoning are checked at job creation; rows from before that check are mended here.
 */
function originalTask(task: Task, cliDefaults: CliDefaults): Task {
  if (task.kind === 'image') {
    const out = { ...task, width: task.width ?? cliDefaults.width, height: task.height ?? cliDefaults.height };
    if (out.seed !== undefined && !(Number.isSafeInteger(out.seed) && out.seed >= 0)) delete out.seed;
    return out;
  }
  if (task.kind === 'llm' && task.reasoning !== undefined && typeof task.reasoning !== 'string') {
    const { reasoning: _dropped, ...rest } = task;
    return rest;
  }
  return task;
}

/** Peers that take the stored offer JSON as is (our worker): no parse on the hot path. */
export function takesStoredOffer(features: ReadonlySet<string>): boolean {
  return features.has('extended-offers') && features.has('attempt');
}

/**
 * The offer text for a peer without `attempt` or `extended-offers` (the original), or undefined
 * when the job cannot be offered to it (an engine or file role its parser does not know).
 */
export function offerTextFor(features: ReadonlySet<string>, row: OfferRow): string | undefined {
  const extended = features.has('extended-offers');
  const attempt = features.has('attempt');
  const task = JSON.parse(row.task) as Task;
  let modelSource = JSON.parse(row.model_source) as ModelSource;
  let shapedTask = task;
  if (!extended) {
    modelSource = { ...modelSource, files: modelSource.files ?? [], cliDefaults: modelSource.cliDefaults ?? {} };
    if (originalIncompatibility(modelSource) !== undefined) return undefined;
    modelSource = { ...modelSource, cliDefaults: originalCliDefaults(modelSource) };
    shapedTask = originalTask(task, modelSource.cliDefaults);
  }
  return encodeFrame({
    type: 'offer',
    claim: {
      jobId: row.id,
      gameId: row.game_id,
      assetName: row.asset_name,
      model: row.model,
      vramGbEstimate: row.vram_gb_estimate,
      task: shapedTask,
      modelSource,
      attempt: attempt ? row.attempt : undefined,
    },
  });
}

/**
 * Any other frame, shaped for the peer: `attempt` (and an error's `jobId`) only to peers with the
 * `attempt` feature; the welcome's extensions only to peers that announced any feature (the
 * original announces none, and does not read them).
 */
export function frameFor(features: ReadonlySet<string>, frame: StudioFrame): StudioFrame {
  if (frame.type === 'welcome' && features.size === 0) {
    return { type: 'welcome', workerId: frame.workerId, serverTime: frame.serverTime };
  }
  if (features.has('attempt')) return frame;
  switch (frame.type) {
    case 'completeAck':
    case 'failAck':
      return { type: frame.type, jobId: frame.jobId };
    case 'error':
      return { type: 'error', code: frame.code, message: frame.message };
    default:
      return frame;
  }
}
