import { createHash } from 'node:crypto';

/** Our own UUID namespace for ComfyUI prompt ids; any fixed UUID would do, it only has to never change. */
const PROMPT_ID_NAMESPACE = '3c1f8f5e-6d0a-4b8e-9a51-2f7c0d9e4b61';

/**
 * The ComfyUI prompt id for one attempt of one job: a UUIDv5 (RFC 9562 §5.5) of "<jobId>#<attempt>".
 * ComfyUI takes a client-chosen `prompt_id` but expects a UUID; a stable one means the worker can
 * always tell which prompt in ComfyUI's queue or history belongs to which attempt.
 */
export function comfyPromptId(jobId: string, attempt: number): string {
  const namespace = Buffer.from(PROMPT_ID_NAMESPACE.replaceAll('-', ''), 'hex');
  const digest = createHash('sha1').update(namespace).update(`${jobId}#${attempt}`, 'utf8').digest();
  const bytes = digest.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50; // version 5
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

