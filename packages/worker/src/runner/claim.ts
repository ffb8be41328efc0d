import { promptForTask, type JobOfferClaim, type ModelSource, type Task, type TaskKind } from '@studio-worker/protocol';

/** The attempt a claim runs as when the studio numbers none (the original studio; a local API job). */
export const FIRST_ATTEMPT = 1;

/**
 * A studio job offer as the worker holds it, normalised once where it enters (`JobRunner.handleOffer`),
 * so nothing further in invents a fallback:
 * - `attempt` is always a number. The original studio numbers no attempts; its claims run as attempt
 *   1, and `attemptOnWire` stays undefined so that no frame, upload or outbox entry about them carries
 *   an `attempt` the studio never sent (it would not understand one).
 * - `prompt` is derived once: the job board shows it and every result carries it back.
 */
export interface Claim {
  jobId: string;
  attempt: number;
  /** What the studio sent: echoed in every frame and upload about this claim, matched on cancel and acks. */
  attemptOnWire: number | undefined;
  kind: TaskKind;
  model: string;
  task: Task;
  source: ModelSource;
  /**
   * The full prompt (the last message for chat). Results carry it back (`completeJson.prompt`, the
   * upload's `prompt` field) for the original studio, which files a result under it; this project's
   * studio files results under its own record of the job and does not read it.
   */
  prompt: string;
  /** The offer as it came, for observers that mirror it (the local model catalogue). */
  offer: JobOfferClaim;
}

export function claimFromOffer(offer: JobOfferClaim): Claim {
  return {
    jobId: offer.jobId,
    attempt: offer.attempt ?? FIRST_ATTEMPT,
    attemptOnWire: offer.attempt,
    kind: offer.task.kind,
    model: offer.model,
    task: offer.task,
    source: offer.modelSource,
    prompt: promptForTask(offer.task),
    offer,
  };
}
