import { z } from 'zod';
import { ModelSource, TaskKind } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { DownloadState, ModelDownloads } from '../models/download-board.ts';
import { modelDirFor, type CatalogModel, type ModelDirListing } from '../models/index.ts';
import { displayUrl } from '../platform/url-policy.ts';
import { ApiError } from './errors.ts';

/** `POST /models`: a model the operator adds by hand (origin `local`; the studio never overwrites it). */
export const LocalModelInput = z.object({
  id: z.string().min(1).max(200),
  kind: TaskKind,
  source: ModelSource,
  vramGbEstimate: z.number().nonnegative().optional(),
  displayName: z.string().min(1).max(200).optional(),
});
export type LocalModelInput = z.infer<typeof LocalModelInput>;

/** One catalogue model as `GET /models` lists it. Download URLs are shown without query or credentials. */
export interface ModelWire {
  id: string;
  kind: string;
  displayName?: string;
  origin: 'studio' | 'local';
  engine: string;
  vramGbEstimate: number;
  files: Array<{ role: string; filename: string; url: string; approxBytes?: number }>;
  /** Every file is on disk and verified (always true for a model without files). */
  ready: boolean;
  /** While downloading, and after a failed download. */
  download?: DownloadState;
  bytesOnDisk: number;
  lastSeenAt: string;
}

export interface LocalModelsDeps {
  modelsRoot: string;
  catalog: {
    list(): CatalogModel[];
    get(id: string): CatalogModel | undefined;
    upsertLocal(model: Omit<CatalogModel, 'origin' | 'lastSeenAt'>): Promise<void>;
    remove(id: string): Promise<boolean>;
  };
  provisioner: { list(): Promise<ModelDirListing[]>; remove(modelId: string): Promise<void> };
  downloads: ModelDownloads;
  /** Every file present and verified (the provisioner's check: no network, no hashing). */
  isReady: (model: CatalogModel) => Promise<boolean>;
  /** A running job uses the model. */
  inUse: (modelId: string) => boolean;
  /** Re-check which models are ready (after a delete). */
  refreshReady: () => Promise<void>;
  log: Logger;
}

/** The model routes' logic: list with readiness and downloads, download, delete, add. */
export class LocalModels {
  readonly #deps: LocalModelsDeps;

  constructor(deps: LocalModelsDeps) {
    this.#deps = deps;
  }

  async list(): Promise<ModelWire[]> {
    const sizes = new Map<string, number>();
    for (const listing of await this.#deps.provisioner.list()) sizes.set(listing.modelDir, listing.files.reduce((sum, file) => sum + file.bytes, 0));
    return Promise.all(this.#deps.catalog.list().map((model) => this.#wire(model, sizes)));
  }

  /** 202: started; 404 `unknown_model`; 409 `already_downloading`; 400 `no_files`. */
  async download(id: string): Promise<ModelWire> {
    const model = this.#known(id);
    if (model.source.files.length === 0) throw new ApiError(400, 'no_files', `model "${id}" lists no files to download (its engine holds the model itself)`);
    if (this.#deps.downloads.start(id, model.source.files) === 'already_downloading') {
      throw new ApiError(409, 'already_downloading', `model "${id}" is already downloading; GET /models shows its progress`);
    }
    return this.#wire(model, new Map());
  }

  /** Removes the model's files and its catalogue entry; 409 `model_in_use` while a job runs on it. */
  async remove(id: string): Promise<{ id: string; removed: true }> {
    this.#known(id);
    if (this.#deps.inUse(id)) throw new ApiError(409, 'model_in_use', `a running job uses model "${id}"; delete it once the job has ended`);
    this.#deps.downloads.forget(id);
    try {
      await this.#deps.provisioner.remove(id);
    } catch (error) {
      throw new ApiError(500, 'model_not_removed', `could not remove the files of model "${id}": ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      await this.#deps.catalog.remove(id);
    } catch (error) {
      throw new ApiError(500, 'catalog_not_saved', `removed the files of "${id}" but could not save models.json: ${error instanceof Error ? error.message : String(error)}`);
    }
    await this.#deps.refreshReady();
    this.#deps.log.info({ op: 'model_remove', modelId: id }, `model ${id} deleted through the local API`);
    return { id, removed: true };
  }

  async add(body: unknown): Promise<ModelWire> {
    const parsed = LocalModelInput.safeParse(body);
    if (!parsed.success) {
      const problems = parsed.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
      throw new ApiError(400, 'invalid_model', `the model is not valid: ${problems.join('; ')}`);
    }
    const input = parsed.data;
    try {
      await this.#deps.catalog.upsertLocal({
        id: input.id,
        kind: input.kind,
        source: input.source,
        vramGbEstimate: input.vramGbEstimate ?? 0,
        ...(input.displayName === undefined ? {} : { displayName: input.displayName }),
      });
    } catch (error) {
      throw new ApiError(500, 'catalog_not_saved', `could not save models.json: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.#deps.log.info({ op: 'model_add', modelId: input.id, engine: input.source.engine, kind: input.kind }, `model ${input.id} added through the local API`);
    await this.#deps.refreshReady();
    return this.#wire(this.#known(input.id), new Map());
  }

  #known(id: string): CatalogModel {
    const model = this.#deps.catalog.get(id);
    if (!model) throw new ApiError(404, 'unknown_model', `no model "${id}" in the catalogue; GET /models lists them`);
    return model;
  }

  async #wire(model: CatalogModel, sizes: ReadonlyMap<string, number>): Promise<ModelWire> {
    const wire: ModelWire = {
      id: model.id,
      kind: model.kind,
      origin: model.origin,
      engine: model.source.engine,
      vramGbEstimate: model.vramGbEstimate,
      files: model.source.files.map((file) => ({
        role: file.role,
        filename: file.filename,
        url: displayUrl(file.url),
        ...(file.approxBytes === undefined ? {} : { approxBytes: file.approxBytes }),
      })),
      ready: model.source.files.length === 0 || (await this.#deps.isReady(model)),
      bytesOnDisk: sizes.get(modelDirFor(this.#deps.modelsRoot, model.id)) ?? 0,
      lastSeenAt: model.lastSeenAt,
    };
    if (model.displayName !== undefined) wire.displayName = model.displayName;
    const download = this.#deps.downloads.state(model.id);
    if (download) wire.download = download;
    return wire;
  }
}
