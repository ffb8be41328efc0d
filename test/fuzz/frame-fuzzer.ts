import { STUDIO_FRAME_TYPES, WORKER_FRAME_TYPES } from '@studio-worker/protocol';

/** A small seeded PRNG (mulberry32), so a failing fuzz run can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FuzzFrame = { kind: 'text'; text: string; category: string } | { kind: 'binary'; bytes: Buffer; category: string };

/**
 * Frames that a broken, hostile or newer peer might send: not JSON, JSON that is not an object,
 * known types with wrong or missing fields, unknown types, deep nesting, huge strings, binary.
 * Known-type frames with bad fields reuse real field names so they reach the validators.
 */
export class FrameFuzzer {
  private readonly random: () => number;
  private readonly knownTypes: readonly string[];
  private readonly oversizedBytes: number;

  constructor(seed: number, direction: 'to-studio' | 'to-worker', oversizedBytes = 5 * 1024 * 1024) {
    this.random = prng(seed);
    this.knownTypes = direction === 'to-studio' ? WORKER_FRAME_TYPES : STUDIO_FRAME_TYPES;
    this.oversizedBytes = oversizedBytes;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }

  private junkValue(depth = 0): unknown {
    const r = this.random();
    if (r < 0.15) return null;
    if (r < 0.3) return Math.floor(this.random() * 2 ** 40) * (this.random() < 0.5 ? -1 : 1);
    if (r < 0.4) return this.random() < 0.5;
    if (r < 0.55) return 'x'.repeat(Math.floor(this.random() * 300));
    if (r < 0.65) return '\u0000\uffff💥"\\';
    if (r < 0.8 && depth < 4) return Array.from({ length: Math.floor(this.random() * 4) }, () => this.junkValue(depth + 1));
    if (depth < 4) return Object.fromEntries(Array.from({ length: Math.floor(this.random() * 4) }, () => [this.pick(FIELD_NAMES), this.junkValue(depth + 1)]));
    return NaN;
  }

  next(): FuzzFrame {
    const r = this.random();
    if (r < 0.1) return { kind: 'text', category: 'not-json', text: this.pick(['', '{', 'null', '{"type":', 'hello', '\u0000', '}{', '{"type":"hello"']) };
    if (r < 0.18) return { kind: 'text', category: 'not-object', text: JSON.stringify(this.pick([[1, 2], 'str', 42, true, null])) };
    if (r < 0.3) return { kind: 'text', category: 'unknown-type', text: JSON.stringify({ type: `future${Math.floor(this.random() * 100)}`, data: this.junkValue() }) };
    if (r < 0.35) return { kind: 'text', category: 'no-type', text: JSON.stringify({ jobId: 'job-x', typ: 'hello' }) };
    if (r < 0.4) {
      let nested: unknown = 1;
      for (let i = 0; i < 2000; i++) nested = [nested];
      return { kind: 'text', category: 'deep', text: JSON.stringify({ type: this.pick(this.knownTypes), x: nested }) };
    }
    if (r < 0.42) return { kind: 'text', category: 'oversized', text: JSON.stringify({ type: 'logBatch', entries: [], pad: 'x'.repeat(this.oversizedBytes) }) };
    if (r < 0.47) return { kind: 'binary', category: 'binary', bytes: Buffer.from(Array.from({ length: 64 }, () => Math.floor(this.random() * 256))) };
    // A known type with junk in its fields.
    const frame: Record<string, unknown> = { type: this.pick(this.knownTypes) };
    for (let i = 0, n = Math.floor(this.random() * 5); i < n; i++) frame[this.pick(FIELD_NAMES)] = this.junkValue();
    return { kind: 'text', category: 'known-type-bad-fields', text: JSON.stringify(frame) };
  }
}

const FIELD_NAMES = [
  'jobId',
  'attempt',
  'authToken',
  'capabilities',
  'claim',
  'task',
  'modelSource',
  'result',
  'error',
  'retryable',
  'code',
  'reason',
  'entries',
  'inFlight',
  'phase',
  'step',
  'currentJobId',
  'workerId',
  'serverTime',
  'message',
  'kind',
  'prompt',
  '__proto__',
  'constructor',
];

export { rssMiB } from '../helpers/raw-http.ts';
