import { sleepOrAbort } from '../../platform/sleep.ts';
import type { CliDefaults } from '@studio-worker/protocol';
import { toEngineFailure, type EngineContext } from '../engine.ts';

const DELAY_STEPS = 10;

/**
 * `cliDefaults.delayMs` makes the synthetic engine slow on purpose, so tests can watch progress,
 * cancel a running job or shut down mid-job. Anything but a positive finite number means no delay.
 */
export function requestedDelayMs(cliDefaults: CliDefaults | undefined): number {
  const value = cliDefaults?.delayMs;
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

/** Throws the `cancelled` failure when the job was aborted. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw toEngineFailure(signal.reason, signal);
}

/**
 * The "generating" phase: `delayMs` spent in ten abortable steps with a progress report after each,
 * or a single immediate report without a delay. An abort rejects at once with `cancelled`.
 */
export async function simulateGeneration(delayMs: number, ctx: Pick<EngineContext, 'signal' | 'progress'>): Promise<void> {
  throwIfAborted(ctx.signal);
  if (delayMs <= 0) {
    ctx.progress({ phase: 'generating', step: 1, total: 1, fraction: 1 });
    return;
  }
  const stepMs = delayMs / DELAY_STEPS;
  for (let step = 1; step <= DELAY_STEPS; step++) {
    try {
      await sleepOrAbort(stepMs, ctx.signal);
    } catch (error) {
      throw toEngineFailure(error, ctx.signal);
    }
    ctx.progress({ phase: 'generating', step, total: DELAY_STEPS, fraction: step / DELAY_STEPS });
  }
}
