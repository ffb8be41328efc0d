import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import type { ImageTask, TaskKind, VideoTask } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { expandHome } from '../../config/paths.ts';
import { EngineFailure, toEngineFailure, type Engine, type EngineAvailability, type EngineContext, type EngineJob, type EngineResult } from '../engine.ts';
import { ComfyApi, ComfyHttpError, ComfyPromptRejected, ComfyUnreachable, type HistoryEntry } from './api.ts';
import { ComfyuiEngineConfig, type ComfyuiEngineConfigInput } from './config.ts';
import { executionError, PromptFollower } from './follow.ts';
import { pickOutput, sniffExt } from './output.ts';
import { fillWorkflow, placeholderValues } from './placeholders.ts';
import { comfyPromptId } from './prompt-id.ts';
import { loadWorkflowTemplate } from './workflow.ts';
import { sleepOrAbort } from '../../platform/sleep.ts';

export interface ComfyuiEngineDeps {
  log: Logger;
  /** The worker's models_root; a relative `workflows_dir` is read from here. */
  modelsRoot: string;
}

/** The most a probe waits for `/system_stats`, whatever request_timeout_secs says (the router gives up at 10 s). */
const PROBE_TIMEOUT_MS = 5_000;
/** Cancel must end the run within 1 s; the interrupt and queue removal get this much of it. */
const CANCEL_BUDGET_MS = 600;
const HISTORY_POLL_MS = 100;
/** `/free` is housekeeping: it must never hold up a job's outcome for long. */
const FREE_TIMEOUT_MS = 2_000;
const FREE_BODY = { unload_models: false, free_memory: true } as const;

/**
 * Runs image (and video) jobs on a ComfyUI server: fills the model's API-format workflow template,
 * queues it with `POST /prompt`, follows it over the WebSocket (with watchdogs), and fetches the
 * first output through `/history` and `/view`. ComfyUI keeps models loaded between jobs; every
 * `free_every_jobs` jobs it is asked to free memory, against VRAM creep.
 */
export class ComfyuiEngine implements Engine {
  readonly name = 'comfyui';
  readonly kinds: readonly TaskKind[] = ['image', 'video'];
  readonly #config: ComfyuiEngineConfig;
  readonly #api: ComfyApi;
  readonly #log: Logger;
  readonly #workflowsDir: string | undefined;
  readonly #followers = new Set<PromptFollower>();
  /** Jobs queued in ComfyUI since the engine started; `/free` is due at every multiple of free_every_jobs. */
  #queuedJobs = 0;
  #freeDue = false;

  constructor(config: ComfyuiEngineConfig, deps: ComfyuiEngineDeps) {
    this.#config = config;
    this.#api = new ComfyApi(config.url, config.requestTimeoutSecs * 1000);
    this.#log = deps.log;
    this.#workflowsDir = config.workflowsDir === undefined ? undefined : resolveDir(config.workflowsDir, deps.modelsRoot);
  }

  get url(): string {
    return this.#api.baseUrl;
  }

  async probe(): Promise<EngineAvailability> {
    const url = this.#config.url;
    try {
      const stats = await this.#api.systemStats(AbortSignal.timeout(Math.min(PROBE_TIMEOUT_MS, this.#config.requestTimeoutSecs * 1000)));
      const version = stats.system?.comfyui_version || 'unknown version';
      const device = stats.devices?.[0];
      const vram =
        device?.vram_total !== undefined && device.vram_total > 0
          ? `, ${gib(device.vram_free ?? 0)} of ${gib(device.vram_total)} GiB VRAM free`
          : '';
      return { available: true, detail: `ComfyUI ${version} at ${url} on ${device?.name ?? 'an unknown device'}${vram}` };
    } catch (error) {
      if (error instanceof ComfyUnreachable) {
        return {
          available: false,
          reason: `${error.message}: start ComfyUI (e.g. \`python main.py --listen 127.0.0.1 --port 8188\`) or set [engines.comfyui] url = "http://host:port" to where it runs`,
        };
      }
      if (error instanceof ComfyHttpError) {
        return { available: false, reason: `${url} is not answering like ComfyUI (${error.message}): set [engines.comfyui] url to the ComfyUI server's address` };
      }
      const message = error instanceof Error ? error.message : String(error);
      return { available: false, reason: `${url} answered /system_stats with something that is not ComfyUI's (${message}): check [engines.comfyui] url` };
    }
  }

  advertisedModels(): Partial<Record<TaskKind, readonly string[]>> {
    // Any model whose ModelSource names "comfyui" can run here: the router's `comfyui:*` says so.
    return {};
  }

  async run(job: EngineJob, ctx: EngineContext): Promise<EngineResult> {
    const task = job.task;
    if (task.kind !== 'image' && task.kind !== 'video') {
      throw new EngineFailure('bad_input', `the comfyui engine runs image and video tasks, not ${task.kind}`, { retryable: false });
    }
    const images = [task.initImageUrl, task.kind === 'image' ? task.maskUrl : undefined, task.kind === 'image' ? task.refImageUrl : undefined];
    if (images.some((url) => url !== undefined)) {
      // Better a clear refusal than a text-to-image result that silently ignored the input image.
      throw new EngineFailure('bad_input', 'the comfyui engine does not take init, mask or reference images yet (no upload to ComfyUI): run this task on an engine that does', {
        retryable: false,
      });
    }
    ctx.signal.throwIfAborted();
    const template = await loadWorkflowTemplate(job, { workflowsDir: this.#workflowsDir });
    const chosen = placeholderValues(task, job.source.cliDefaults);
    const workflow = fillWorkflow(template.workflow, chosen.values);
    const clientId = randomUUID();
    let promptId = comfyPromptId(job.jobId, job.attempt);
    ctx.log.info(
      { op: 'comfyui', promptId, clientId, seed: chosen.seed, randomSeed: chosen.randomSeed, workflow: template.origin },
      `ComfyUI prompt ${promptId} from ${template.origin}, seed ${chosen.seed}${chosen.randomSeed ? ' (random: the task gave none)' : ''}`,
    );

    const follower = new PromptFollower({
      api: this.#api,
      clientId,
      workflow,
      signal: ctx.signal,
      silenceMs: this.#config.silenceTimeoutSecs * 1000,
      stepMs: this.#config.stepTimeoutSecs * 1000,
      connectTimeoutMs: this.#config.requestTimeoutSecs * 1000,
      progress: (update) => ctx.progress(update),
      log: ctx.log,
    });
    this.#followers.add(follower);
    /** Whether ComfyUI holds the prompt: "maybe" while the POST is out (it may queue it and never answer). */
    let inComfy: 'no' | 'maybe' | 'yes' = 'no';
    try {
      ctx.progress({ phase: 'loading', message: `connecting to ComfyUI at ${this.#config.url}` });
      await follower.connect();
      await this.#forget(promptId, ctx);
      inComfy = 'maybe';
      this.#countQueuedJob();
      const accepted = await this.#api.queuePrompt({ prompt: workflow, client_id: clientId, prompt_id: promptId }, ctx.signal);
      inComfy = 'yes';
      if (accepted.prompt_id !== promptId) {
        // An older ComfyUI picks its own id; follow the one it reports.
        ctx.log.info({ op: 'comfyui', promptId: accepted.prompt_id, asked: promptId }, 'ComfyUI chose its own prompt id');
        promptId = accepted.prompt_id;
      }
      follower.submitted(promptId);
      const end = await follower.ended();
      ctx.progress({ phase: 'encoding', message: `fetching the result from ComfyUI (${end.via})` });
      const result = await this.#collect(promptId, task, ctx.signal);
      ctx.signal.throwIfAborted();
      return result;
    } catch (error) {
      const refused = error instanceof ComfyPromptRejected || error instanceof ComfyHttpError;
      if (inComfy === 'yes' ? follower.mayBeLive : inComfy === 'maybe' && !refused) await this.#stop(promptId, follower.started, ctx);
      throw this.#failure(error, ctx.signal, template.origin);
    } finally {
      this.#followers.delete(follower);
      follower.close();
      if (inComfy !== 'no' && !ctx.signal.aborted) await this.#freeIfDue(ctx.log);
    }
  }

  async close(): Promise<void> {
    for (const follower of this.#followers) follower.close();
    this.#followers.clear();
  }

  /**
   * A previous run of the same id (the runner retried the attempt, the worker restarted) must not
   * answer for this one: drop it from ComfyUI's queue and history first. Best effort.
   */
  async #forget(promptId: string, ctx: EngineContext): Promise<void> {
    const results = await Promise.allSettled([this.#api.deleteFromQueue([promptId], ctx.signal), this.#api.deleteHistory([promptId], ctx.signal)]);
    ctx.signal.throwIfAborted();
    const unreachable = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof ComfyUnreachable);
    if (unreachable) throw unreachable.reason;
  }

  /**
   * Takes our prompt out of ComfyUI within the cancel budget: out of the queue if it waits there,
   * interrupted if it runs. `/interrupt` names the prompt, so current ComfyUI never stops another
   * client's work; when we never saw ours start, we only interrupt after `/queue` says it runs.
   */
  async #stop(promptId: string, started: boolean, ctx: EngineContext): Promise<void> {
    const budget = AbortSignal.timeout(CANCEL_BUDGET_MS);
    const steps = started
      ? [this.#api.interrupt(promptId, budget), this.#api.deleteFromQueue([promptId], budget)]
      : [
          this.#api.deleteFromQueue([promptId], budget).then(async () => {
            const queue = await this.#api.queue(budget);
            if (queue.running.includes(promptId)) await this.#api.interrupt(promptId, budget);
          }),
        ];
    const results = await Promise.allSettled(steps);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length === 0) ctx.log.info({ op: 'comfyui_cancel', promptId }, 'ComfyUI prompt stopped');
    else ctx.log.warn({ op: 'comfyui_cancel', promptId, err: failed[0]?.reason }, 'could not confirm that ComfyUI stopped the prompt');
  }

  /** The finished prompt's output: `/history/{id}` (polled briefly: it stays `{}` until ComfyUI files it), then `/view`. */
  async #collect(promptId: string, task: ImageTask | VideoTask, signal: AbortSignal): Promise<EngineResult> {
    const entry = await this.#waitForHistory(promptId, signal);
    if (entry.status?.status_str === 'error' || entry.status?.completed === false) throw failureFromHistory(entry, promptId);
    const file = pickOutput(entry.outputs, task.kind);
    if (file === undefined) {
      const what = task.kind === 'video' ? 'a video or animated image (VHS_VideoCombine, SaveAnimatedWEBP)' : 'an image (SaveImage)';
      throw new EngineFailure('bad_input', `the ComfyUI workflow finished without an output file: it needs an output node that saves ${what}`, { retryable: false });
    }
    const bytes = await this.#api.view(file, signal);
    if (bytes.length === 0) throw new EngineFailure('engine_error', `ComfyUI served an empty file for ${file.filename}`, { retryable: true });
    return { type: 'file', bytes, ext: sniffExt(bytes, file.filename) };
  }

  async #waitForHistory(promptId: string, signal: AbortSignal): Promise<HistoryEntry> {
    const deadline = Date.now() + this.#config.historyWaitSecs * 1000;
    for (;;) {
      const entry = await this.#api.history(promptId, signal);
      if (entry !== undefined) return entry;
      if (Date.now() >= deadline) {
        throw new EngineFailure('engine_error', `ComfyUI finished prompt ${promptId} but /history/${promptId} stayed empty for ${this.#config.historyWaitSecs} s`, {
          retryable: true,
        });
      }
      await sleepOrAbort(HISTORY_POLL_MS, signal);
    }
  }

  #countQueuedJob(): void {
    this.#queuedJobs += 1;
    const every = this.#config.freeEveryJobs;
    if (every > 0 && this.#queuedJobs % every === 0) this.#freeDue = true;
  }

  /** `POST /free` once it is due; a cancelled job leaves it due for the next one (cancel has no time for it). */
  async #freeIfDue(log: Logger): Promise<void> {
    if (!this.#freeDue) return;
    this.#freeDue = false;
    try {
      await this.#api.free(FREE_BODY, AbortSignal.timeout(FREE_TIMEOUT_MS));
      log.info({ op: 'comfyui_free', jobs: this.#queuedJobs }, `asked ComfyUI to free memory after ${this.#queuedJobs} jobs`);
    } catch (error) {
      log.warn({ op: 'comfyui_free', err: error }, 'POST /free failed; VRAM may creep until the next try');
    }
  }

  #failure(error: unknown, signal: AbortSignal, origin: string): unknown {
    if (signal.aborted) return signal.reason ?? error;
    if (error instanceof EngineFailure) return error;
    if (error instanceof ComfyPromptRejected) {
      return new EngineFailure('bad_input', `ComfyUI refused the workflow (${origin}): ${error.message}`, { retryable: false, cause: error });
    }
    if (error instanceof ComfyUnreachable) return new EngineFailure('engine_unavailable', error.message, { retryable: true, cause: error });
    if (error instanceof ComfyHttpError) return new EngineFailure('engine_error', error.message, { retryable: true, cause: error });
    return toEngineFailure(error, signal);
  }
}

/** A failed or interrupted prompt as `/history` records it (`status.messages` holds the events). */
function failureFromHistory(entry: HistoryEntry, promptId: string): EngineFailure {
  for (const [event, data] of entry.status?.messages ?? []) {
    const fields = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    const text = (key: string) => (typeof fields[key] === 'string' || typeof fields[key] === 'number' ? String(fields[key]) : undefined);
    if (event === 'execution_error') {
      return executionError(text('node_id'), text('node_type'), text('exception_type'), text('exception_message') ?? 'no exception message');
    }
    if (event === 'execution_interrupted') {
      return new EngineFailure('engine_error', `ComfyUI interrupted prompt ${promptId} in node ${text('node_id') ?? '?'}`, { retryable: true });
    }
  }
  return new EngineFailure('engine_error', `ComfyUI did not complete prompt ${promptId} (status ${entry.status?.status_str ?? 'unknown'})`, { retryable: true });
}

function resolveDir(dir: string, modelsRoot: string): string {
  const expanded = expandHome(dir);
  return isAbsolute(expanded) ? expanded : resolve(modelsRoot, expanded);
}

function gib(bytes: number): string {
  return (bytes / 1024 ** 3).toFixed(1);
}

/** The factory the worker's engine roster calls with the `[engines.comfyui]` table (camelCase keys). */
export function createComfyuiEngine(config: ComfyuiEngineConfigInput, deps: ComfyuiEngineDeps): ComfyuiEngine {
  return new ComfyuiEngine(ComfyuiEngineConfig.parse(config), deps);
}
