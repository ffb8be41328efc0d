import { mkdir, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ModelSource, TaskKind, type JobOfferClaim } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { writeFileAtomic } from '../config/atomic-file.ts';
import { byCodePoint } from '../platform/order.ts';

/**
 * A model this worker knows: one the studio offered (origin `studio`, mirrored from the offer's
 * ModelSource) or one the operator added locally (origin `local`, never overwritten by the studio).
 */
export const CatalogModel = z.object({
  id: z.string().min(1),
  kind: TaskKind,
  source: ModelSource,
  origin: z.enum(['studio', 'local']),
  vramGbEstimate: z.number().nonnegative().default(0),
  displayName: z.string().optional(),
  lastSeenAt: z.string(),
});
export type CatalogModel = z.infer<typeof CatalogModel>;

const CatalogFile = z.object({ models: z.array(CatalogModel) });

/**
 * `<config dir>/models.json`: the models this worker has met, so it can tell the studio which of
 * them are ready (files verified) and the local API can list, download and delete them. Saved
 * atomically; a corrupt file is set aside as `models.json.corrupt-<time>` and the catalogue starts
 * empty (it refills as offers arrive).
 */
export class ModelCatalog {
  readonly path: string;
  private readonly log: Logger;
  private readonly models = new Map<string, CatalogModel>();
  private saving: Promise<void> = Promise.resolve();

  private constructor(path: string, log: Logger) {
    this.path = path;
    this.log = log;
  }

  static async load(path: string, log: Logger): Promise<ModelCatalog> {
    const catalog = new ModelCatalog(path, log);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ op: 'catalog', err: (error as Error).message }, 'models.json unreadable; starting with an empty catalogue');
      return catalog;
    }
    let parsed: z.infer<typeof CatalogFile> | undefined;
    try {
      const result = CatalogFile.safeParse(JSON.parse(text));
      if (result.success) parsed = result.data;
    } catch {
      // not JSON
    }
    if (!parsed) {
      const aside = `${path}.corrupt-${Date.now()}`;
      await rename(path, aside).catch(() => {});
      log.warn({ op: 'catalog', aside }, `models.json was not a valid catalogue; moved it to ${aside} and started empty`);
      return catalog;
    }
    for (const model of parsed.models) catalog.models.set(model.id, model);
    return catalog;
  }

  list(): CatalogModel[] {
    return [...this.models.values()].sort((a, b) => byCodePoint(a.id, b.id));
  }

  get(id: string): CatalogModel | undefined {
    return this.models.get(id);
  }

  /** Mirror an offered model (original-spec §3.3): never over a local entry; saved only on change. */
  rememberOffer(claim: JobOfferClaim): Promise<void> {
    const existing = this.models.get(claim.model);
    if (existing?.origin === 'local') return Promise.resolve();
    const source = JSON.stringify(claim.modelSource);
    const changed = !existing || JSON.stringify(existing.source) !== source || existing.kind !== claim.task.kind || existing.vramGbEstimate !== claim.vramGbEstimate;
    this.models.set(claim.model, {
      id: claim.model,
      kind: claim.task.kind,
      source: claim.modelSource,
      origin: 'studio',
      vramGbEstimate: claim.vramGbEstimate,
      lastSeenAt: new Date().toISOString(),
    });
    return changed ? this.save() : Promise.resolve();
  }

  upsertLocal(model: Omit<CatalogModel, 'origin' | 'lastSeenAt'>): Promise<void> {
    this.models.set(model.id, { ...model, origin: 'local', lastSeenAt: new Date().toISOString() });
    return this.save();
  }

  remove(id: string): Promise<boolean> {
    if (!this.models.delete(id)) return Promise.resolve(false);
    return this.save().then(() => true);
  }

  /** Saves run one after another; a failed save rejects for its caller and is logged. */
  private save(): Promise<void> {
    const text = `${JSON.stringify({ models: this.list() }, null, 2)}\n`;
    const next = this.saving.then(async () => {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.path, text, 0o600);
    });
    this.saving = next.catch((error: Error) => this.log.warn({ op: 'catalog', err: error.message }, 'models.json not saved'));
    return next;
  }
}
