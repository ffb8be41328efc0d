import type { FailCode } from '@studio-worker/protocol';

/**
 * Why the worker itself stopped a job, carried as the AbortSignal's reason so the job's end can be
 * reported for what it is: `cancelled` (the studio said so; not retryable) or `handed_back`
 * (shutdown; the studio runs it again without counting an attempt).
 */
export class JobAbort extends Error {
  readonly code: Extract<FailCode, 'cancelled' | 'handed_back'>;
  readonly retryable: boolean;
  constructor(code: 'cancelled' | 'handed_back', message: string) {
    super(message);
    this.name = 'JobAbort';
    this.code = code;
    this.retryable = code === 'handed_back';
  }
}

export const CANCELLED_BY_STUDIO = 'cancelled by studio';
export const HANDED_BACK_ON_SHUTDOWN = 'worker shutting down; the job goes back to the studio';
