import { Mutex } from './mutex.ts';

export type { Release } from './mutex.ts';

/**
 * One job at a time on this machine (DESIGN.md worker rule 2): studio jobs, local API jobs and the
 * auto-updater all go through the same gate, so they never share the GPU by accident. `busy` means
 * "the engine is busy". It is the worker's one mutex (./mutex.ts) under the name its callers know.
 */
export class JobGate extends Mutex {
  get busy(): boolean {
    return this.held;
  }
}
