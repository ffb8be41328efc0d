import { stat } from 'node:fs/promises';
import type { ImageTask, TaskKind } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import {
  EngineFailure,
  filesOfRole,
  toEngineFailure,
  type Engine,
  type EngineAvailability,
  type EngineContext,
  type EngineJob,
  type EngineResult,
  type ResolvedModelFile,
} from '../engine.ts';
import { OnnxEngineConfig, type OnnxEngineConfigInput } from './config.ts';
import { HostRequestError, HostStartError, InferenceHost, type RuntimeInfo } from './host-client.ts';
import type { ModelFileRef } from './host-protocol.ts';
import { decodeImage, decodeMask, encodeImage, outputExtFor } from './images.ts';
import { fetchImageBytes, type FetchImageOptions } from '../shared/input-images.ts';
import { Mutex } from '../../platform/mutex.ts';
import { defaultDataDir } from '../../update/paths.ts';
import { installRuntime, locateRuntime, runtimeState } from '../../update/runtimes.ts';
import { modelMismatch, type ModelRunner } from './model-io.ts';
import { parsePipelineOptions, type PipelineOptions } from './options.ts';
import { runInpaint } from './pipelines/inpaint.ts';
import { runMatte } from './pipelines/matte.ts';
import { runUpscale } from './pipelines/upscale.ts';
import type { FloatTensor, RawImage } from './tensors.ts';

export interface OnnxEngineDeps {
  log: Logger;
  /** Where the worker keeps model files; the engine reads only what the runner resolved. */
  modelsRoot: string;
  /**
   * The per-user data dir whose `runtimes/onnx/` holds onnxruntime-node once `studio-worker engines
   * add onnx` installed it (update/runtimes.ts); default the one the updater uses.
   */
  dataDir?: string;
}

const DEFAULT_RUNTIME = 'onnxruntime-node';

/** A failed probe is retried after this long (a heartbeat must not spawn a doomed host each time). */
const PROBE_RETRY_MS = 30_000;

/**
 * Image-to-image models run with ONNX Runtime (original-spec §6.3 `onnx`: LaMa object removal),
 * generalised to three pipelines chosen by the model's cliDefaults: inpaint, matte, upscale.
 * onnxruntime-node lives in a child process (see host.ts) that keeps sessions loaded between jobs
 * and is SIGKILLed on cancel; the daemon itself never loads the native addon.
 */
export class OnnxEngine implements Engine {
  readonly name = 'onnx';
  readonly kinds: readonly TaskKind[] = ['image'];

  readonly #config: OnnxEngineConfig;
  readonly #log: Logger;
  readonly #dataDir: string;
  /**
   * One job at a time on the inference host: a cancel kills the host, which must not take another
   * job's inference with it, and CPU inference already uses every core. Waiting is abortable.
   */
  readonly #lock = new Mutex();
  #host: InferenceHost | null = null;
  #starting: Promise<InferenceHost> | null = null;
  #runtime: RuntimeInfo | null = null;
  #probeFailure: { reason: string; at: number } | null = null;
  /** An install on first use (install_runtime = true) under way, and how far it got. */
  #installing: { progress: string } | null = null;
  readonly #installAbort = new AbortController();
  #idleTimer: NodeJS.Timeout | undefined;
  #sessionLoads = 0;
  #hostStarts = 0;
  /** Jobs holding the lock; the idle timer never runs while one does. */
  #activeJobs = 0;
  #closed = false;

  constructor(config: OnnxEngineConfigInput, deps: OnnxEngineDeps) {
    this.#config = OnnxEngineConfig.parse(config);
    this.#log = deps.log;
    this.#dataDir = deps.dataDir ?? defaultDataDir();
  }

  /**
   * Starts the consented install (install_runtime = true) in the background; the probes that
   * follow report its progress, and the first one after it finished starts the host.
   */
  #installOnFirstUse(): string {
    const pin = runtimeState('onnx', this.#dataDir);
    const installing = { progress: `installing ${pin.package} ${pin.version} into ${pin.dir} (install_runtime = true)` };
    this.#installing = installing;
    this.#log.info({ op: 'onnx_runtime', package: pin.package, version: pin.version, dir: pin.dir }, installing.progress);
    void installRuntime('onnx', {
      dataDir: this.#dataDir,
      signal: this.#installAbort.signal,
      onProgress: (progress) => {
        if (progress.phase === 'installing') installing.progress = `installing ${pin.package} ${pin.version}: ${progress.fetched}/${progress.total} packages`;
        else if (progress.phase === 'verifying') installing.progress = `installing ${pin.package} ${pin.version}: verifying`;
      },
    }).then(
      () => {
        this.#log.info({ op: 'onnx_runtime', dir: pin.dir }, `installed ${pin.package} ${pin.version} in ${pin.dir}`);
        this.#probeFailure = null;
      },
      (error: unknown) => {
        const reason = `installing ${pin.package} ${pin.version} failed: ${error instanceof Error ? error.message : String(error)}; tried again in ${PROBE_RETRY_MS / 1000} s, or run \`studio-worker engines add onnx\``;
        this.#log.warn({ op: 'onnx_runtime', err: error }, reason);
        this.#probeFailure = { reason, at: Date.now() };
      },
    ).finally(() => {
      this.#installing = null;
    });
    return installing.progress;
  }

  /**
   * What the host imports: a runtime_module the operator set, as given; the default one from
   * `<data dir>/runtimes/onnx` when `engines add onnx` installed it there, else as a bare name
   * (the worker's own node_modules: a checkout, or an operator's own `npm i onnxruntime-node`).
   */
  #runtimeModule(): string {
    if (this.#config.runtimeModule !== DEFAULT_RUNTIME) return this.#config.runtimeModule;
    return locateRuntime('onnx', this.#dataDir) ?? DEFAULT_RUNTIME;
  }

  /** Sessions created from a model file so far (a cached session is not counted again). */
  get sessionLoads(): number {
    return this.#sessionLoads;
  }

  /** Inference host processes started so far. */
  get hostStarts(): number {
    return this.#hostStarts;
  }

  /** The running host's pid, if one runs. */
  get hostPid(): number | undefined {
    return this.#host?.alive ? this.#host.pid : undefined;
  }

  async probe(): Promise<EngineAvailability> {
    if (!this.#config.enabled) return { available: false, reason: 'disabled: set enabled = true in the [engines.onnx] table of config.toml' };
    if (this.#runtime) return { available: true, detail: this.#describeRuntime(this.#runtime) };
    if (this.#installing) return { available: false, reason: this.#installing.progress };
    if (this.#probeFailure && Date.now() - this.#probeFailure.at < PROBE_RETRY_MS) return { available: false, reason: this.#probeFailure.reason };
    if (this.#config.installRuntime && this.#config.runtimeModule === DEFAULT_RUNTIME && !runtimeState('onnx', this.#dataDir).installed) {
      return { available: false, reason: this.#installOnFirstUse() };
    }
    try {
      const host = await this.#ensureHost();
      return { available: true, detail: this.#describeRuntime(host.runtime) };
    } catch (error) {
      const reason = this.#unavailableReason(error);
      this.#probeFailure = { reason, at: Date.now() };
      return { available: false, reason };
    }
  }

  advertisedModels(): Partial<Record<TaskKind, readonly string[]>> {
    // Any ONNX model the studio sends: the router advertises "onnx:*".
    return {};
  }

  async run(job: EngineJob, ctx: EngineContext): Promise<EngineResult> {
    try {
      return await this.#run(job, ctx);
    } catch (error) {
      // Whatever was under way when the job was aborted, the abort is the outcome.
      if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#installAbort.abort();
    clearTimeout(this.#idleTimer);
    const host = this.#host ?? (await this.#starting?.catch(() => null)) ?? null;
    this.#host = null;
    if (host) {
      host.kill('the worker is shutting down');
      await host.exited;
    }
  }

  async #run(job: EngineJob, ctx: EngineContext): Promise<EngineResult> {
    const { signal } = ctx;
    signal.throwIfAborted();
    const task = job.task;
    if (task.kind !== 'image') throw new EngineFailure('bad_input', `the onnx engine runs image tasks, not ${task.kind}`, { retryable: false });
    const parsed = parsePipelineOptions(job.source.cliDefaults);
    if (!parsed.ok) throw new EngineFailure('bad_input', parsed.message, { retryable: false });
    const options = parsed.options;
    const modelFile = this.#modelFile(job);
    const model = await modelRef(modelFile);
    const inputs = await this.#readInputs(task, options, ctx);

    const release = await this.#lock.acquire(signal);
    this.#activeJobs++;
    clearTimeout(this.#idleTimer);
    try {
      const host = await abortable(this.#ensureHost(), signal).catch((error: unknown) => {
        if (!(error instanceof HostStartError)) throw error;
        throw new EngineFailure('engine_unavailable', this.#unavailableReason(error), { retryable: true, cause: error });
      });
      const runner = await this.#loadRunner(host, model, modelFile, ctx);
      let image: RawImage;
      if (options.pipeline === 'inpaint') image = await runInpaint(runner, options, inputs.image, inputs.mask ?? new Uint8Array(0));
      else if (options.pipeline === 'matte') image = await runMatte(runner, options, inputs.image);
      else image = await runUpscale(runner, options, inputs.image);
      signal.throwIfAborted();
      ctx.progress({ phase: 'encoding', message: 'encoding the result' });
      const ext = outputExtFor(task.ext);
      const bytes = await encodeImage(image, ext, options.pipeline === 'inpaint');
      signal.throwIfAborted();
      return { type: 'file', bytes, ext };
    } finally {
      this.#activeJobs--;
      release();
      this.#armIdleTimer();
    }
  }

  #modelFile(job: EngineJob): ResolvedModelFile {
    const file = filesOfRole(job, 'model')[0];
    if (!file) {
      throw new EngineFailure('bad_input', `model ${job.model} lists no file with role "model" (the .onnx file) in its source; fix the model's registry entry`, {
        retryable: false,
      });
    }
    return file;
  }

  async #readInputs(task: ImageTask, options: PipelineOptions, ctx: EngineContext): Promise<{ image: RawImage; mask?: Uint8Array }> {
    const { signal } = ctx;
    if (!task.initImageUrl) {
      throw new EngineFailure('bad_input', `the ${options.pipeline} pipeline needs an input image: set initImageUrl`, { retryable: false });
    }
    if (options.pipeline === 'inpaint' && !task.maskUrl) {
      throw new EngineFailure('bad_input', 'inpainting needs a mask: set maskUrl (white = remove)', { retryable: false });
    }
    // Any format sharp decodes is welcome here, so the bytes are not sniffed on the way in.
    const limits: Omit<FetchImageOptions, 'what'> = {
      signal,
      policy: ctx.inputUrls,
      maxBytes: this.#config.maxInputBytes,
      maxBytesHint: 'raise [engines.onnx] max_input_bytes',
      timeoutMs: this.#config.fetchTimeoutSecs * 1000,
    };
    const [imageBytes, maskBytes] = await Promise.all([
      fetchImageBytes(task.initImageUrl, { what: 'initImageUrl', ...limits }),
      options.pipeline === 'inpaint' && task.maskUrl ? fetchImageBytes(task.maskUrl, { what: 'maskUrl', ...limits }) : undefined,
    ]);
    signal.throwIfAborted();
    const image = await decodeImage(imageBytes, 'initImageUrl');
    if (maskBytes === undefined) return { image };
    return { image, mask: await decodeMask(maskBytes, image.width, image.height) };
  }

  /** Load (or reuse) the session and wrap it for the pipelines, reporting progress on the way. */
  async #loadRunner(host: InferenceHost, model: ModelFileRef, file: ResolvedModelFile, ctx: EngineContext): Promise<ModelRunner> {
    const { signal } = ctx;
    const timeoutMs = this.#config.inferenceTimeoutSecs * 1000;
    let loaded;
    try {
      loaded = await host.load(model, {
        signal,
        timeoutMs,
        onLoading: () => ctx.progress({ phase: 'loading', message: `loading ${file.filename}` }),
      });
    } catch (error) {
      if (error instanceof HostRequestError) {
        throw new EngineFailure('engine_error', `onnxruntime could not load ${file.filename}: ${error.message} (is it a valid .onnx file?)`, {
          retryable: false,
          cause: error,
        });
      }
      throw error;
    }
    if (loaded.fresh) {
      this.#sessionLoads++;
      ctx.log.info({ op: 'onnx_load', model: file.filename, loadMs: Math.round(loaded.loadMs) }, 'ONNX model loaded');
    }
    return {
      inputs: loaded.inputs,
      outputs: loaded.outputs,
      run: async (feeds: Record<string, FloatTensor>, output: string): Promise<FloatTensor> => {
        signal.throwIfAborted();
        ctx.progress({ phase: 'generating', step: 0, total: 1, fraction: 0, message: `running ${file.filename}` });
        let answer;
        try {
          answer = await host.run(model, feeds, [output], { signal, timeoutMs });
        } catch (error) {
          if (error instanceof HostRequestError) {
            const retryable = /alloc|out of memory/i.test(error.message);
            throw new EngineFailure('engine_error', `onnxruntime failed running ${file.filename}: ${error.message}`, { retryable, cause: error });
          }
          throw error;
        }
        ctx.progress({ phase: 'generating', step: 1, total: 1, fraction: 1 });
        ctx.log.debug({ op: 'onnx_run', model: file.filename, runMs: Math.round(answer.runMs) }, 'inference finished');
        const tensor = answer.outputs[output];
        if (!tensor) throw modelMismatch(`the model did not return output "${output}"`);
        if (tensor.type !== 'float32' || !(tensor.data instanceof Float32Array)) {
          throw modelMismatch(`model output "${output}" is ${tensor.type}; the onnx engine reads float32 outputs only`);
        }
        return { data: tensor.data, dims: tensor.dims };
      },
    };
  }

  #ensureHost(): Promise<InferenceHost> {
    if (this.#closed) return Promise.reject(new EngineFailure('engine_unavailable', 'the onnx engine is shut down', { retryable: true }));
    if (this.#host?.alive) return Promise.resolve(this.#host);
    this.#starting ??= this.#startHost()
      .catch((error: unknown) => {
        // The runtime worked before but not now (uninstalled, broken): the next probe says so.
        if (error instanceof HostStartError) {
          this.#runtime = null;
          this.#probeFailure = { reason: this.#unavailableReason(error), at: Date.now() };
        }
        throw error;
      })
      .finally(() => {
        this.#starting = null;
      });
    return this.#starting;
  }

  async #startHost(): Promise<InferenceHost> {
    const config = this.#config;
    const host = await InferenceHost.start({
      runtimeModule: this.#runtimeModule(),
      executionProviders: config.executionProviders,
      intraOpThreads: config.intraOpThreads,
      maxCachedModels: config.maxCachedModels,
      startTimeoutMs: config.startTimeoutSecs * 1000,
      log: this.#log,
    });
    const offered = new Set(host.runtime.backends.map((backend) => backend.name));
    const missing = config.executionProviders.filter((provider) => offered.size > 0 && !offered.has(provider));
    if (missing.length > 0) {
      host.kill('unsupported execution provider');
      throw new HostStartError(
        `execution provider ${missing.map((p) => `"${p}"`).join(', ')} is not in ${config.runtimeModule} ${host.runtime.version} ` +
          `(it offers ${[...offered].join(', ')}): change [engines.onnx] execution_providers`,
      );
    }
    this.#hostStarts++;
    this.#runtime = host.runtime;
    this.#probeFailure = null;
    this.#host = host;
    void host.exited.then(() => {
      if (this.#host === host) this.#host = null;
    });
    if (this.#closed) host.kill('the worker is shutting down');
    this.#log.info({ op: 'onnx_host', pid: host.pid, version: host.runtime.version }, 'ONNX inference host started');
    // A host whose job was cancelled while it started must still go away when unused.
    this.#armIdleTimer();
    return host;
  }

  /** After a job (or a probe), an unused host goes away after idle_unload_secs, freeing its models. */
  #armIdleTimer(): void {
    clearTimeout(this.#idleTimer);
    const idleMs = this.#config.idleUnloadSecs * 1000;
    if (idleMs <= 0 || !this.#host || this.#activeJobs > 0) return;
    this.#idleTimer = setTimeout(() => {
      this.#log.info({ op: 'onnx_host', idleUnloadSecs: this.#config.idleUnloadSecs }, 'stopping the idle ONNX host');
      this.#host?.kill('idle');
    }, idleMs);
    this.#idleTimer.unref();
  }

  #describeRuntime(runtime: RuntimeInfo): string {
    const offered = runtime.backends.map((b) => (b.bundled ? b.name : `${b.name} (separate install)`));
    const offers = offered.length > 0 ? `; build offers ${offered.join(', ')}` : '';
    const module = this.#runtimeModule();
    const from = module === this.#config.runtimeModule ? '' : ` from ${runtimeState('onnx', this.#dataDir).dir}`;
    return `${this.#config.runtimeModule} ${runtime.version}${from}; using ${this.#config.executionProviders.join(', ')}${offers}`;
  }

  #unavailableReason(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof HostStartError && this.#config.runtimeModule === DEFAULT_RUNTIME && /failed to load/.test(message)) {
      const pin = runtimeState('onnx', this.#dataDir);
      return `${message}. The ONNX runtime is installed on demand: run \`studio-worker engines add onnx\` (${pin.package} ${pin.version}, about 290 MB, from the npm registry into ${pin.dir}) or point [engines.onnx] runtime_module at a build`;
    }
    return message;
  }
}

async function modelRef(file: ResolvedModelFile): Promise<ModelFileRef> {
  try {
    const info = await stat(file.path);
    return { path: file.path, size: info.size, mtimeMs: info.mtimeMs };
  } catch (error) {
    throw new EngineFailure('engine_error', `model file ${file.path} is not readable: ${error instanceof Error ? error.message : String(error)}`, {
      retryable: true,
      cause: error,
    });
  }
}

/** Rejects with the abort as soon as the signal fires; the work itself carries on (a host start). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

export function createOnnxEngine(config: OnnxEngineConfigInput, deps: OnnxEngineDeps): OnnxEngine {
  return new OnnxEngine(config, deps);
}
