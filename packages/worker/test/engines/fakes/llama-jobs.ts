import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { LlmTask, ModelSource, type CliDefaults } from '@studio-worker/protocol';
import type { EngineContext, EngineJob, EngineProgress, ResolvedModelFile } from '../../../src/engines/engine.ts';
import { silentLogger } from '@studio-worker/log';

export interface LlmJobOptions {
  model?: string;
  task?: Partial<Omit<LlmTask, 'kind'>>;
  cliDefaults?: CliDefaults;
  files?: ResolvedModelFile[];
}

/** An llm job as the runner hands it over (task and source parsed by the protocol's schemas). */
export function llmJob(options: LlmJobOptions = {}): EngineJob {
  const task = LlmTask.parse({ kind: 'llm', messages: [{ role: 'user', content: 'Say hello' }], ...options.task });
  const source = ModelSource.parse({ engine: 'llama-cpp', cliDefaults: options.cliDefaults ?? {} });
  return { jobId: `job-${Math.random().toString(36).slice(2, 8)}`, attempt: 1, model: options.model ?? 'qwen3-8b', task, source, files: options.files ?? [] };
}

/** A resolved `model` file, as the runner provides after downloading it. */
export function modelFile(path: string): ResolvedModelFile {
  return { role: 'model', filename: path.split('/').at(-1) ?? 'model.gguf', path, url: `https://models.example/${path.split('/').at(-1)}` };
}

/** An engine context that records progress; `abort()` cancels the job. */
export function jobContext(workDir: string, log: Logger = silentLogger): EngineContext & { updates: EngineProgress[]; abort(reason?: string): void } {
  const controller = new AbortController();
  const updates: EngineProgress[] = [];
  return {
    signal: controller.signal,
    progress: (update) => updates.push(update),
    log,
    workDir,
    updates,
    abort: (reason = 'cancelled by the test') => controller.abort(new Error(reason)),
  };
}

/** A logger at the most verbose level whose every line lands in `lines` (to prove what is never logged). */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { log: pino({ level: 'trace' }, stream), lines };
}

/** What a promise rejected with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; retryable?: boolean }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string; retryable?: boolean };
  }
  throw new Error('expected the promise to reject, but it resolved');
}
