import { z } from 'zod';

/**
 * ComfyUI's WebSocket events (`{type, data}` JSON text frames; binary frames are previews). Most
 * carry `prompt_id`; a few older or reconnect-time ones do not.
 */
export type ComfyEvent =
  | { type: 'status'; queueRemaining: number | undefined }
  | { type: 'execution_start'; promptId: string | undefined }
  | { type: 'execution_cached'; promptId: string | undefined; nodes: string[] }
  | { type: 'executing'; promptId: string | undefined; node: string | null }
  | { type: 'progress'; promptId: string | undefined; node: string | undefined; value: number; max: number }
  | { type: 'executed'; promptId: string | undefined; node: string; output: Record<string, unknown> }
  | { type: 'execution_success'; promptId: string | undefined }
  | { type: 'execution_error'; promptId: string | undefined; nodeId: string | undefined; nodeType: string | undefined; exceptionType: string | undefined; exceptionMessage: string }
  | { type: 'execution_interrupted'; promptId: string | undefined; nodeId: string | undefined; nodeType: string | undefined }
  /** A latent preview (binary frame, server.py's BinaryEventTypes.PREVIEW_IMAGE). */
  | { type: 'preview'; mime: 'image/jpeg' | 'image/png'; bytes: Uint8Array }
  /** An event we do not read (custom nodes send their own). Still proof of life. */
  | { type: 'other'; name: string };

/** server.py's BinaryEventTypes.PREVIEW_IMAGE; its payload starts with the image type: 1 JPEG, 2 PNG. */
const PREVIEW_IMAGE = 1;
const IMAGE_TYPES = { 1: 'image/jpeg', 2: 'image/png' } as const;

/**
 * A binary frame (server.py encode_bytes): a big-endian uint32 event type, then the payload. For
 * PREVIEW_IMAGE that is a uint32 image type and the image. PREVIEW_IMAGE_WITH_METADATA (4) goes only
 * to clients announcing `supports_preview_metadata`, which we do not.
 */
export function parseComfyBinary(data: Uint8Array): ComfyEvent {
  if (data.byteLength < 8) return { type: 'other', name: 'binary' };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const mime = IMAGE_TYPES[view.getUint32(4) as 1 | 2];
  if (view.getUint32(0) !== PREVIEW_IMAGE || mime === undefined) return { type: 'other', name: 'binary' };
  return { type: 'preview', mime, bytes: data.subarray(8) };
}

const Frame = z.looseObject({ type: z.string(), data: z.unknown() });
const id = z.union([z.string(), z.number()]).transform(String);
const Data = z.looseObject({
  prompt_id: z.string().optional(),
  node: id.nullable().optional(),
  node_id: id.optional(),
  node_type: z.string().optional(),
  value: z.number().optional(),
  max: z.number().optional(),
  nodes: z.array(id).optional(),
  output: z.record(z.string(), z.unknown()).nullable().optional(),
  exception_type: z.string().optional(),
  exception_message: z.string().optional(),
  status: z.looseObject({ exec_info: z.looseObject({ queue_remaining: z.number().optional() }).optional() }).optional(),
});

export function parseComfyEvent(text: string): ComfyEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { type: 'other', name: 'unparsable' };
  }
  const frame = Frame.safeParse(raw);
  if (!frame.success) return { type: 'other', name: 'unparsable' };
  const parsed = Data.safeParse(frame.data.data ?? {});
  if (!parsed.success) return { type: 'other', name: frame.data.type };
  const data = parsed.data;
  const promptId = data.prompt_id;
  switch (frame.data.type) {
    case 'status':
      return { type: 'status', queueRemaining: data.status?.exec_info?.queue_remaining };
    case 'execution_start':
      return { type: 'execution_start', promptId };
    case 'execution_cached':
      return { type: 'execution_cached', promptId, nodes: data.nodes ?? [] };
    case 'executing':
      return { type: 'executing', promptId, node: data.node ?? null };
    case 'progress':
      if (data.value === undefined || data.max === undefined) return { type: 'other', name: 'progress' };
      return { type: 'progress', promptId, node: data.node ?? undefined, value: data.value, max: data.max };
    case 'executed':
      if (data.node === undefined || data.node === null) return { type: 'other', name: 'executed' };
      return { type: 'executed', promptId, node: data.node, output: data.output ?? {} };
    case 'execution_success':
      return { type: 'execution_success', promptId };
    case 'execution_error':
      return {
        type: 'execution_error',
        promptId,
        nodeId: data.node_id,
        nodeType: data.node_type,
        exceptionType: data.exception_type,
        exceptionMessage: data.exception_message ?? 'no exception message',
      };
    case 'execution_interrupted':
      return { type: 'execution_interrupted', promptId, nodeId: data.node_id, nodeType: data.node_type };
    default:
      return { type: 'other', name: frame.data.type };
  }
}
