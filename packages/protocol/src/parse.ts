import type { z } from 'zod';
import { StudioFrame, STUDIO_FRAME_TYPES, WorkerFrame, WORKER_FRAME_TYPES } from './frames.ts';

/** Largest text frame either side accepts; a JSON result bigger than this goes over HTTP instead. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * The three ways a text frame can read (DESIGN.md rule 6): a known frame; a frame of a type this
 * side does not know (log and ignore: forward compatible); or a malformed known frame (answer
 * `protocol_violation`).
 */
export type FrameParse<F> =
  | { ok: true; frame: F }
  | { ok: false; kind: 'unknown_type'; type: string }
  | { ok: false; kind: 'malformed'; type?: string; message: string };

function parseWith<F>(schema: z.ZodType<F>, knownTypes: readonly string[], text: string): FrameParse<F> {
  if (text.length > MAX_FRAME_BYTES) return { ok: false, kind: 'malformed', message: `frame larger than ${MAX_FRAME_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, kind: 'malformed', message: 'frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, kind: 'malformed', message: 'frame must be a JSON object with a "type" field' };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') return { ok: false, kind: 'malformed', message: 'frame has no string "type" field' };
  if (!knownTypes.includes(type)) return { ok: false, kind: 'unknown_type', type };
  const fast = schema === (WorkerFrame as unknown) ? everyJobFrame(value as Record<string, unknown>) : undefined;
  if (fast) return { ok: true, frame: fast as F };
  const parsed = schema.safeParse(value);
  if (!parsed.success) return { ok: false, kind: 'malformed', type, message: describeIssues(parsed.error) };
  return { ok: true, frame: parsed.data };
}

/**
 * `accept` and `completeJson`, the two frames every job sends, checked by hand: the same rules as
 * AcceptFrame and CompleteJsonFrame (a test holds the two together), at a fraction of zod's cost.
 * Anything these plain checks do not clearly pass goes to zod, which decides (and words the error).
 */
function everyJobFrame(value: Record<string, unknown>): WorkerFrame | undefined {
  const { type, jobId, attempt, prompt } = value;
  if (typeof jobId !== 'string' || jobId.length < 1 || jobId.length > 200) return undefined;
  if (attempt !== undefined && attempt !== null && !(typeof attempt === 'number' && Number.isSafeInteger(attempt) && attempt > 0)) return undefined;
  const att = (attempt ?? undefined) as number | undefined;
  if (type === 'accept') return { type, jobId, attempt: att };
  if (type !== 'completeJson' || !('result' in value)) return undefined;
  if (prompt !== undefined && prompt !== null && typeof prompt !== 'string') return undefined;
  return { type, jobId, result: value.result, prompt: (prompt ?? undefined) as string | undefined, attempt: att };
}

/** A short, human description of what is wrong, naming the fields ("claim.task.prompt: expected string"). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

/** Studio side: read a frame a worker sent. */
export function parseWorkerFrame(text: string): FrameParse<WorkerFrame> {
  return parseWith(WorkerFrame, WORKER_FRAME_TYPES, text);
}

/** Worker side: read a frame the studio sent. */
export function parseStudioFrame(text: string): FrameParse<StudioFrame> {
  return parseWith(StudioFrame, STUDIO_FRAME_TYPES, text);
}

/** Frames are plain JSON; optional fields that are undefined are omitted, never sent as null. */
export function encodeFrame(frame: WorkerFrame | StudioFrame): string {
  return JSON.stringify(frame);
}
