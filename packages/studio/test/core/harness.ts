import { parseStudioFrame, type StudioFrame, type WorkerCapabilities } from '@studio-worker/protocol';
import { silentLogger } from '@studio-worker/log';
import { createStudioCore, type CoreOptions, type StudioCore } from '../../src/core/index.ts';
import type { Ports, WorkerChannel } from '../../src/core/ports.ts';
import { nodeCrypto } from '../../src/node/crypto.ts';
import { NodeSql } from '../../src/node/sqlite.ts';

/** Records what the core sends to each connection. */
export class RecordingChannel implements WorkerChannel {
  readonly frames = new Map<string, StudioFrame[]>();
  readonly closed = new Map<string, { code: number; reason: string }>();
  send(connId: string, text: string): void {
    if (this.closed.has(connId)) return;
    const parsed = parseStudioFrame(text);
    if (!parsed.ok) throw new Error(`core sent an invalid frame: ${text}`);
    const list = this.frames.get(connId) ?? [];
    list.push(parsed.frame);
    this.frames.set(connId, list);
  }
  close(connId: string, code: number, reason: string): void {
    if (!this.closed.has(connId)) this.closed.set(connId, { code, reason });
  }
  /** Frames of one type sent to a connection. */
  of<T extends StudioFrame['type']>(connId: string, type: T): Extract<StudioFrame, { type: T }>[] {
    return (this.frames.get(connId) ?? []).filter((f): f is Extract<StudioFrame, { type: T }> => f.type === type);
  }
  take(connId: string): StudioFrame[] {
    const list = this.frames.get(connId) ?? [];
    this.frames.set(connId, []);
    return list;
  }
}

export class ManualClock {
  t = Date.parse('2026-11-22T10:00:00.000Z');
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Harness {
  core: StudioCore;
  sql: NodeSql;
  clock: ManualClock;
  channel: RecordingChannel;
  ports: Ports;
}

export function makeHarness(options: Partial<CoreOptions> = {}, path = ':memory:', clock = new ManualClock()): Harness {
  const sql = new NodeSql(path);
  const channel = new RecordingChannel();
  const ports: Ports = { sql, clock, channel, crypto: nodeCrypto, events: { enabled: false, publish() {} } };
  const core = createStudioCore(ports, silentLogger, { retryBackoffMs: 1000, ...options });
  return { core, sql, clock, channel, ports };
}

export const ALL_FEATURES = ['attempt', 'progress', 'cancel', 'resume', 'extended-offers'];

export function capabilities(over: Partial<WorkerCapabilities> = {}): WorkerCapabilities {
  return {
    machineName: 'box',
    username: 'ada',
    agentVersion: '0.1.0',
    engine: 'multi',
    vramTotalGb: 24,
    vramThresholdGb: 12,
    autoEnabled: true,
    autoStart: false,
    supportedModels: ['synthetic', 'synthetic-image', 'synthetic-llm'],
    taskKinds: ['image', 'llm'],
    supportedModelsPerKind: { image: ['synthetic', 'synthetic-image'], llm: ['synthetic', 'synthetic-llm'] },
    protocolFeatures: ALL_FEATURES,
    ...over,
  };
}

let nextConn = 0;

/** Create an approved worker and connect it (hello → welcome). Answers its ids. */
export function connectWorker(h: Harness, caps: WorkerCapabilities = capabilities(), creds?: { workerId: string; authToken: string }) {
  const { workerId, authToken } = creds ?? h.core.registration.createApprovedWorker('test', caps.machineName);
  const connId = `c${++nextConn}`;
  h.core.dispatcher.connectionOpened(connId, workerId);
  send(h, connId, { type: 'hello', authToken, capabilities: caps });
  return { workerId, authToken, connId };
}

export function send(h: Harness, connId: string, frame: Record<string, unknown>): void {
  h.core.dispatcher.handleText(connId, JSON.stringify(frame));
}

export function imageJob(h: Harness, prompt = 'a fox', model = 'synthetic-image') {
  const created = h.core.jobs.create({ model, task: { kind: 'image', prompt, width: 64, height: 64, steps: 20, ext: 'png' }, gameId: '', assetName: '', priority: 0 });
  if (!created.ok) throw new Error(created.error.message);
  return created.value;
}

/** An LLM job's submission for the synthetic model (what llmJob creates). */
export function llmSubmission(content: string, maxTokens = 16) {
  return { model: 'synthetic-llm', task: { kind: 'llm' as const, messages: [{ role: 'user', content }], maxTokens, temperature: 0.7 }, gameId: '', assetName: '', priority: 0 };
}

export function llmJob(h: Harness, content = 'hi') {
  const created = h.core.jobs.create(llmSubmission(content));
  if (!created.ok) throw new Error(created.error.message);
  return created.value;
}
