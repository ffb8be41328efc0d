import { TASK_KINDS, type TaskKind, type WorkerCapabilities } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { Engine, EngineAvailability } from './engine.ts';

/** The capability fields the router owns; the session adds the rest (machine, VRAM, features …). */
export type RouterCapabilities = Pick<WorkerCapabilities, 'supportedModels' | 'taskKinds' | 'supportedModelsPerKind' | 'unavailableEngines'>;

export interface EngineStatus {
  engine: string;
  kinds: TaskKind[];
  available: boolean;
  reason?: string;
  detail?: string;
}

export type RouteDecision = { ok: true; engine: Engine } | { ok: false; code: 'unsupported'; reason: string };

export interface EngineRouterOptions {
  /** A probe that takes longer than this counts as unavailable (default 10 s), so one hung engine cannot stall a heartbeat. */
  probeTimeoutMs?: number;
}

/** The engine that advertises concrete model ids instead of the `<engine>:*` wildcard. */
const SYNTHETIC = 'synthetic';
const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
const NOT_PROBED: EngineAvailability = { available: false, reason: 'not probed yet' };

/**
 * What an operator does to get an engine onto this worker, quoted in refusals for engines the worker
 * does not have. Engines not listed get a generic hint.
 */
export const ENGINE_SETUP_HINTS: Readonly<Record<string, string>> = {
  synthetic: 'set enabled = true in the [engines.synthetic] table of config.toml',
  'sd-cpp': 'put sd-cli on PATH, or set sd_cli = "/path/to/sd-cli" in the [engines.sd-cpp] table of config.toml (docs/engines/sd-cpp.md)',
  comfyui: 'add [engines.comfyui] with url = "http://127.0.0.1:8188" to config.toml (docs/engines/comfyui.md)',
  a1111: 'add [engines.a1111] with url = "http://127.0.0.1:7860" to config.toml (docs/engines/a1111.md)',
  openai: 'add [engines.openai] with base_url = "http://<server>/v1" to config.toml (docs/engines/openai.md)',
  onnx: 'add an [engines.onnx] table to config.toml (docs/engines/onnx.md)',
  'llama-cpp': 'add [engines.llama-cpp] with server_url = "http://<server>/v1" or llama_server = "/path/to/llama-server" to config.toml (docs/engines/llama-cpp.md)',
  parakeet: 'parakeet serves local streaming only and never runs studio jobs',
};

/**
 * Strict routing (DESIGN.md rule 5, original-spec §6.1): a job runs only on the engine its
 * ModelSource names, and only if that engine serves the task's kind and is available right now.
 * There is no fallback — not to synthetic, not to another engine of the same kind.
 */
export class EngineRouter {
  readonly #engines: readonly Engine[];
  readonly #log: Logger;
  readonly #probeTimeoutMs: number;
  readonly #availability = new Map<string, EngineAvailability>();
  #refreshing: Promise<void> | null = null;
  /** Settles when the first round of probes has: until then every engine reads "not probed yet". */
  readonly #firstProbe = Promise.withResolvers<void>();

  constructor(engines: readonly Engine[], log: Logger, options: EngineRouterOptions = {}) {
    const names = new Set<string>();
    for (const engine of engines) {
      if (names.has(engine.name)) throw new Error(`two engines are named "${engine.name}"; each engine name may be registered once`);
      names.add(engine.name);
    }
    this.#engines = [...engines];
    this.#log = log;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  }

  /** Probe every engine in parallel and cache the results. Concurrent calls share one round of probes. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#probeAll().finally(() => {
      this.#refreshing = null;
      this.#firstProbe.resolve();
    });
    return this.#refreshing;
  }

  /**
   * Resolves once every engine has been probed at least once (a probe is bounded by its timeout).
   * A request that arrives while the daemon starts waits for this instead of being refused with
   * "not probed yet".
   */
  probed(): Promise<void> {
    return this.#firstProbe.promise;
  }

  status(): EngineStatus[] {
    return this.#engines.map((engine) => {
      const availability = this.#availabilityOf(engine);
      const entry: EngineStatus = { engine: engine.name, kinds: [...engine.kinds], available: availability.available };
      if (availability.available) {
        if (availability.detail !== undefined) entry.detail = availability.detail;
      } else {
        entry.reason = availability.reason;
      }
      return entry;
    });
  }

  capabilities(): RouterCapabilities {
    const perKind = new Map<TaskKind, Set<string>>();
    const unavailable: Array<{ engine: string; reason: string }> = [];
    for (const engine of this.#engines) {
      const availability = this.#availabilityOf(engine);
      if (!availability.available) {
        unavailable.push({ engine: engine.name, reason: availability.reason });
        continue;
      }
      const advertised = this.#advertisedModelsOf(engine);
      for (const kind of engine.kinds) {
        let models = perKind.get(kind);
        if (models === undefined) perKind.set(kind, (models = new Set()));
        const own = advertised[kind] ?? [];
        // Synthetic is named by its model ids rather than a wildcard (enginesByKind reads both), so
        // it needs at least "synthetic" for a kind it serves to stay routable.
        if (engine.name !== SYNTHETIC) models.add(`${engine.name}:*`);
        else if (own.length === 0) models.add(SYNTHETIC);
        for (const model of own) models.add(model);
      }
    }
    const taskKinds = TASK_KINDS.filter((kind) => (perKind.get(kind)?.size ?? 0) > 0);
    const supportedModelsPerKind: RouterCapabilities['supportedModelsPerKind'] = {};
    const all = new Set<string>();
    for (const kind of taskKinds) {
      const models = [...(perKind.get(kind) ?? [])].sort();
      supportedModelsPerKind[kind] = models;
      for (const model of models) all.add(model);
    }
    const capabilities: RouterCapabilities = { supportedModels: [...all].sort(), taskKinds, supportedModelsPerKind };
    if (unavailable.length > 0) capabilities.unavailableEngines = unavailable;
    return capabilities;
  }

  resolve(engineName: string, kind: TaskKind): RouteDecision {
    const engine = this.#engines.find((candidate) => candidate.name === engineName);
    if (engine === undefined) {
      const hint = ENGINE_SETUP_HINTS[engineName] ?? `install or configure the "${engineName}" engine`;
      const present = this.#engines.map((e) => e.name).join(', ') || 'none';
      return refuse(`no "${engineName}" engine on this worker (the model needs it; engines here: ${present}): ${hint}`);
    }
    if (!engine.kinds.includes(kind)) {
      return refuse(`the "${engineName}" engine cannot serve ${kind} tasks (it serves ${engine.kinds.join(', ') || 'nothing'})`);
    }
    const availability = this.#availabilityOf(engine);
    if (!availability.available) {
      return refuse(`the "${engineName}" engine is unavailable on this worker: ${availability.reason}`);
    }
    return { ok: true, engine };
  }

  /** Close every engine that has close(); failures are logged, never thrown. */
  async closeAll(): Promise<void> {
    await Promise.all(
      this.#engines.map(async (engine) => {
        if (engine.close === undefined) return;
        try {
          await engine.close();
        } catch (error) {
          this.#log.warn({ op: 'engine_close', engine: engine.name, err: error }, 'engine failed to close cleanly');
        }
      }),
    );
  }

  /** capabilities() runs on every heartbeat, so a throwing engine must not take it down. */
  #advertisedModelsOf(engine: Engine): Partial<Record<TaskKind, readonly string[]>> {
    try {
      return engine.advertisedModels();
    } catch (error) {
      this.#log.warn({ op: 'engine_models', engine: engine.name, err: error }, 'advertisedModels() threw; advertising only the wildcard');
      return {};
    }
  }

  #availabilityOf(engine: Engine): EngineAvailability {
    return this.#availability.get(engine.name) ?? NOT_PROBED;
  }

  async #probeAll(): Promise<void> {
    const results = await Promise.all(this.#engines.map((engine) => this.#probeOne(engine)));
    results.forEach((availability, i) => {
      const engine = this.#engines[i];
      if (engine === undefined) return;
      const previous = this.#availability.get(engine.name);
      this.#availability.set(engine.name, availability);
      // Heartbeats refresh often; only changes are worth a log line.
      if (previous !== undefined && sameAvailability(previous, availability)) return;
      if (availability.available) {
        // The message names the engine and why: `logs` and the web UI show the message, not the fields.
        this.#log.info({ op: 'engine_probe', engine: engine.name, available: true, detail: availability.detail }, `engine ${engine.name} available${availability.detail ? `: ${availability.detail}` : ''}`);
      } else {
        this.#log.warn({ op: 'engine_probe', engine: engine.name, available: false, reason: availability.reason }, `engine ${engine.name} unavailable: ${availability.reason ?? 'no reason given'}`);
      }
    });
  }

  async #probeOne(engine: Engine): Promise<EngineAvailability> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<EngineAvailability>((resolve) => {
      timer = setTimeout(
        () => resolve({ available: false, reason: `probe did not answer within ${this.#probeTimeoutMs} ms` }),
        this.#probeTimeoutMs,
      );
      timer.unref();
    });
    try {
      return await Promise.race([probeSafely(engine), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A probe that throws (or returns something malformed) means the engine is unavailable. */
async function probeSafely(engine: Engine): Promise<EngineAvailability> {
  try {
    const result = await engine.probe();
    if (result?.available === true) return result;
    if (result?.available === false) return { available: false, reason: result.reason || 'unavailable (no reason given)' };
    return { available: false, reason: 'probe returned no availability' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { available: false, reason: `probe failed: ${message || 'no message'}` };
  }
}

function sameAvailability(a: EngineAvailability, b: EngineAvailability): boolean {
  if (a.available && b.available) return a.detail === b.detail;
  if (!a.available && !b.available) return a.reason === b.reason;
  return false;
}

function refuse(reason: string): RouteDecision {
  return { ok: false, code: 'unsupported', reason };
}
