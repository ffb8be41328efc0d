import { isLoopbackHost, ModelEntry, withEngineDefaults, type ModelEntryInput, type ModelUpdate, type ModelView } from '@studio-worker/protocol';
import type { ModelRow } from './model-store.ts';
import type { Ports } from './ports.ts';
import { fail, iso, ok, type Result } from './result.ts';
import { SEED_MODELS } from './seeds.ts';
import type { Stores } from './stores.ts';

/** A `models` row as the API shows it (also read by the export). */
export function modelView(row: ModelRow): ModelView {
  return {
    id: row.id,
    kind: row.kind as ModelView['kind'],
    displayName: row.display_name ?? undefined,
    description: row.description ?? undefined,
    vramGbEstimate: row.vram_gb_estimate,
    enabled: row.enabled === 1,
    source: JSON.parse(row.source),
    pool: row.pool ?? undefined,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** The meta key that marks the seed models as added (once per database). */
const SEEDED = 'models_seeded';

export interface ModelRegistryOptions {
  /**
   * Development only (`studio serve --allow-loopback-http-models`): accept model file URLs over
   * plain http to 127.0.0.1 / localhost / ::1, for a local mirror. Workers refuse them too unless
   * their `allow_loopback_http` is set. Default false.
   */
  allowLoopbackHttpModels: boolean;
}

/**
 * Why a model file URL is refused, or undefined. Workers download whatever the registry names, so
 * the registry names https URLs only (issue 9): `file:`, `gopher:`, `javascript:`, `data:` and plain
 * http (a man in the middle could swap the weights) are refused; loopback http only in development.
 */
export function modelFileUrlProblem(url: string, allowLoopbackHttp: boolean): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url.slice(0, 200)}" is not a URL; use an https URL`;
  }
  if (parsed.protocol === 'https:' && parsed.hostname !== '') return undefined;
  if (parsed.protocol === 'http:') {
    if (isLoopbackHost(parsed.hostname)) {
      if (allowLoopbackHttp) return undefined;
      return 'uses plain http; model files are served over https (a local development mirror on loopback needs the studio started with --allow-loopback-http-models)';
    }
    return 'uses plain http; model files are served over https, so nobody on the way can swap the weights';
  }
  return `uses ${parsed.protocol}; only https URLs are accepted for model files`;
}

/**
 * The model registry: the studio's single source of truth for what a model id means (its kind,
 * VRAM estimate and ModelSource). Jobs resolve their model here when they are created or retried.
 */
export class ModelRegistry {
  private readonly ports: Ports;
  private readonly stores: Stores;
  private readonly options: ModelRegistryOptions;
  /** Views by id, with what refuses to run them (both fixed until the registry changes the row). */
  private readonly cache = new Map<string, { model: ModelView; refused: string | undefined }>();
  constructor(ports: Ports, stores: Stores, options: ModelRegistryOptions = { allowLoopbackHttpModels: false }) {
    this.ports = ports;
    this.stores = stores;
    this.options = options;
  }

  /** Add the seed models once per database. */
  seed(): void {
    const { meta } = this.stores;
    if (meta.get(SEEDED)) return;
    this.ports.sql.transaction(() => {
      for (const seed of SEED_MODELS) if (!this.get(seed.id)) this.insert(ModelEntry.parse(seed));
      meta.set(SEEDED, '1');
    });
  }

  list(): ModelView[] {
    return this.stores.models.list().map(modelView);
  }

  get(id: string): ModelView | undefined {
    return this.entry(id)?.model;
  }

  /**
   * Every job creation resolves its model: keep the views, frozen (the registry is the only writer),
   * and their file-URL check, so a create neither reads the row nor parses its URLs again.
   */
  private entry(id: string): { model: ModelView; refused: string | undefined } | undefined {
    let entry = this.cache.get(id);
    if (!entry) {
      const row = this.stores.models.get(id);
      if (!row) return undefined;
      const model = modelView(row);
      Object.freeze(model.source);
      entry = { model: Object.freeze(model), refused: this.refusedUrl(model) };
      this.cache.set(id, entry);
    }
    return entry;
  }

  /** Drop the cached views (after a transaction that wrote models was rolled back). */
  forgetCached(): void {
    this.cache.clear();
  }

  create(entry: ModelEntry): Result<ModelView> {
    const refused = this.refusedUrl(entry);
    if (refused) return fail(400, 'invalid_model_url', refused);
    if (this.get(entry.id)) return fail(409, 'model_exists', `model ${entry.id} already exists; update it with PATCH /graphics/api/models/${entry.id}`);
    this.insert(entry);
    return ok(this.get(entry.id) as ModelView);
  }

  update(id: string, patch: ModelUpdate): Result<ModelView> {
    const current = this.get(id);
    if (!current) return fail(404, 'unknown_model', `model ${id} does not exist`);
    const next = ModelEntry.safeParse({ ...current, ...patch, id });
    if (!next.success) return fail(400, 'invalid_model', next.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const refused = this.refusedUrl(next.data);
    if (refused) return fail(400, 'invalid_model_url', refused);
    const m = next.data;
    this.stores.models.update(id, m, JSON.stringify(withEngineDefaults(m.source)), this.ports.clock.now());
    this.cache.delete(id);
    return ok(this.get(id) as ModelView);
  }

  /** What a job for this model id runs with; unknown and disabled models are refused (400). */
  resolve(id: string): Result<ModelView> {
    const entry = this.entry(id);
    if (!entry) {
      const known = this.list().filter((m) => m.enabled).map((m) => m.id);
      return fail(400, 'unknown_model', `model "${id}" is not in the registry; known models: ${known.join(', ') || '(none)'}`);
    }
    const { model, refused } = entry;
    if (!model.enabled) return fail(400, 'model_disabled', `model "${id}" is disabled; enable it with PATCH /graphics/api/models/${id} {"enabled":true}`);
    // A row stored before file URLs were checked is not sent to workers either.
    if (refused) return fail(400, 'invalid_model_url', `model "${id}" cannot run: ${refused}; fix it with PATCH /graphics/api/models/${id}`);
    return ok(model);
  }

  /** The first refused file URL as a message naming its field (`source.files[1].url: …`), or undefined. */
  private refusedUrl(entry: { source: { files?: ReadonlyArray<{ url: string }> } }): string | undefined {
    for (const [index, file] of (entry.source.files ?? []).entries()) {
      const problem = modelFileUrlProblem(file.url, this.options.allowLoopbackHttpModels);
      if (problem !== undefined) return `source.files[${index}].url: ${problem}`;
    }
    return undefined;
  }

  /**
   * Models on an engine the original worker knows get the four cliDefaults numbers it requires
   * (cfgScale, steps, width, height) from the engine's defaults when registered without them, so
   * every offer of them parses there (original-spec §4.4).
   */
  private insert(entry: ModelEntry | ModelEntryInput): void {
    const m = ModelEntry.parse(entry);
    this.stores.models.insert(m, JSON.stringify(withEngineDefaults(m.source)), this.ports.clock.now());
  }
}
