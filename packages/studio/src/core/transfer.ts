import { featuresNeededBy, inPool, ModelEntry, ModelSource, Task, TaskKind, withEngineDefaults } from '@studio-worker/protocol';
import { z } from 'zod';
import type { StudioCore } from './index.ts';
import { JobStore, type JobRow } from './job-store.ts';
import { modelFileUrlProblem, modelView } from './models.ts';
import { ModelStore } from './model-store.ts';
import type { SqlPort } from './ports.ts';
import { fail, iso, ok, type Result } from './result.ts';
import { WorkerStore, type WorkerRow } from './worker-store.ts';

/**
 * Moving a studio (the embedded host → Cloudflare, or any core → another): the model registry,
 * the workers (with their token hashes, so an approved worker connects to the new studio with the
 * token it has) and the jobs not finished yet, as one JSON document. Importing is idempotent (ids
 * already there are left alone) and puts every job back in the queue: a claim held in the old
 * studio ends there, so the job comes back with its next attempt (a late result of the old claim
 * is refused as stale). Finished jobs and their results, API tokens, webhooks and pending
 * registration requests stay behind (a worker whose request was pending registers again).
 */
export const TRANSFER_FORMAT = 'studio-export';
export const TRANSFER_VERSION = 1;

const Id = z.string().min(1).max(200);
const Time = z.number().int().nonnegative();

export const TransferWorker = z.object({
  id: Id,
  label: z.string().max(500),
  machineName: z.string().max(500),
  installId: Id.nullable(),
  /** SHA-256 (hex) of the worker's token; null when it was approved but never fetched one. */
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256').nullable(),
  /** The capabilities it last announced (JSON, as stored). */
  capabilities: z.unknown().optional(),
  approvedAt: Time,
  consecutiveFailures: z.number().int().nonnegative(),
  cooldownUntil: Time.nullable(),
});

export const TransferJob = z.object({
  id: Id,
  /** As it was in the exporting studio; every job is queued again on import. */
  status: z.enum(['queued', 'claimed', 'running']),
  model: z.string().min(1).max(200),
  kind: TaskKind,
  engine: z.string().min(1).max(100),
  task: Task,
  modelSource: ModelSource,
  vramGbEstimate: z.number().nonnegative(),
  gameId: z.string().max(200),
  assetName: z.string().max(500),
  prompt: z.string(),
  priority: z.number().int(),
  attempt: z.number().int().positive(),
  failures: z.number().int().nonnegative(),
  losses: z.number().int().nonnegative(),
  maxAttempts: z.number().int().positive(),
  notBefore: Time,
  lastError: z.string().nullable(),
  createdAt: Time,
});

export const StudioExport = z.object({
  format: z.literal(TRANSFER_FORMAT),
  version: z.literal(TRANSFER_VERSION),
  exportedAt: z.string(),
  models: z.array(ModelEntry),
  workers: z.array(TransferWorker),
  /** Oldest first: the order they run in (within a priority) is kept. */
  jobs: z.array(TransferJob),
});
export type StudioExport = z.infer<typeof StudioExport>;
export type StudioExportInput = z.input<typeof StudioExport>;

const Count = z.number().int().nonnegative();
const Carried = z.object({ added: Count, existing: Count, otherPool: Count });
/** What an import did: ids already there are `existing`; a pooled core leaves other pools' ids (`otherPool`). */
export const ImportReport = z.object({
  models: z.object({ added: Count, updated: Count, unchanged: Count }),
  workers: Carried,
  jobs: Carried,
});
export type ImportReport = z.infer<typeof ImportReport>;

/**
 * The export of a studio's database, read with plain SELECTs (no migration, no write), so the CLI
 * can read the embedded host's SQLite file directly, also while that studio runs.
 */
export function exportStudio(sql: SqlPort, now: number): StudioExport {
  // The stores read rows as stored, so a database of an older schema (no pool column) exports too.
  const models = new ModelStore(sql).all();
  const workers = new WorkerStore(sql).allLive();
  const jobs = new JobStore(sql).unfinished();
  return {
    format: TRANSFER_FORMAT,
    version: TRANSFER_VERSION,
    exportedAt: iso(now),
    models: models.map((row) => {
      const { createdAt: _created, updatedAt: _updated, ...entry } = modelView(row);
      return entry;
    }),
    workers: workers.map((w) => ({
      id: w.id,
      label: w.label,
      machineName: w.machine_name,
      installId: w.install_id,
      tokenHash: w.token_hash,
      capabilities: w.capabilities === null ? undefined : (JSON.parse(w.capabilities) as unknown),
      approvedAt: w.approved_at,
      consecutiveFailures: w.consecutive_failures,
      cooldownUntil: w.cooldown_until,
    })),
    jobs: jobs.map((j) => ({
      id: j.id,
      status: j.status as 'queued' | 'claimed' | 'running',
      model: j.model,
      kind: j.kind,
      engine: j.engine,
      task: JSON.parse(j.task) as z.infer<typeof Task>,
      modelSource: JSON.parse(j.model_source) as z.infer<typeof ModelSource>,
      vramGbEstimate: j.vram_gb_estimate,
      gameId: j.game_id,
      assetName: j.asset_name,
      prompt: j.prompt,
      priority: j.priority,
      attempt: j.attempt,
      failures: j.failures,
      losses: j.losses,
      maxAttempts: j.max_attempts,
      notBefore: j.not_before,
      lastError: j.last_error,
      createdAt: j.created_at,
    })),
  };
}

/** The first few problems of a document that does not parse, each with its path. */
function problems(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => `${i.path.length > 0 ? i.path.join('.') : '(document)'}: ${i.message}`);
  const more = error.issues.length > shown.length ? `; and ${error.issues.length - shown.length} more` : '';
  return shown.join('; ') + more;
}

/**
 * `POST /graphics/api/admin/import` (admin): read an export into this core, all of it or (on any
 * problem) none. Idempotent: models are upserted, workers and jobs already here (by id) are left
 * alone. A core that runs a pool takes only the workers and jobs of its pool (the models go to
 * every pool), so a host may hand the same document to each of its pools.
 */
export function importStudio(core: StudioCore, body: unknown): Result<ImportReport> {
  const head = z.object({ format: z.string(), version: z.number() }).safeParse(body);
  if (!head.success || head.data.format !== TRANSFER_FORMAT) {
    return fail(400, 'invalid_export', `not a studio export: the document needs "format": "${TRANSFER_FORMAT}" and a "version"; make one with "studio export"`);
  }
  if (head.data.version !== TRANSFER_VERSION) {
    return fail(400, 'unsupported_export_version', `the export has version ${head.data.version}; this studio reads version ${TRANSFER_VERSION} (export with the same studio version, or upgrade this one)`);
  }
  const parsed = StudioExport.safeParse(body);
  if (!parsed.success) return fail(400, 'invalid_export', `the export does not parse: ${problems(parsed.error)}`);
  const doc = parsed.data;
  for (const [index, model] of doc.models.entries()) {
    for (const [f, file] of model.source.files.entries()) {
      const problem = modelFileUrlProblem(file.url, core.options.allowLoopbackHttpModels);
      if (problem) return fail(400, 'invalid_model_url', `models[${index}] (${model.id}).source.files[${f}].url: ${problem}`);
    }
  }
  const { dispatcher, models } = core;
  const pool = core.options.pool;
  const mine = (id: string) => pool === undefined || inPool(pool, id);
  const report: ImportReport = {
    models: { added: 0, updated: 0, unchanged: 0 },
    workers: { added: 0, existing: 0, otherPool: 0 },
    jobs: { added: 0, existing: 0, otherPool: 0 },
  };
  const added: Added[] = [];
  try {
    core.ports.sql.transaction(() => write(core, doc, mine, report, added));
  } catch (error) {
    // Nothing was written (one transaction); the registry forgets what it cached meanwhile.
    models.forgetCached();
    return fail(500, 'import_failed', `the import was not stored: ${(error as Error).message}`);
  }
  // Committed: offer them to the workers connected here (others take them when they connect).
  for (const job of added) dispatcher.jobQueued(job);
  return ok(report);
}

type Added = { id: string; kind: string; engine: string; vramGbEstimate: number; needs: readonly string[] };

function write(core: StudioCore, doc: StudioExport, mine: (id: string) => boolean, report: ImportReport, added: Added[]): void {
  const { models, jobs, stores } = core;
  const store = stores.jobs;
  for (const model of doc.models) {
    const current = models.get(model.id);
    if (!current) {
      must(models.create(model));
      report.models.added++;
    } else if (sameModel(current, model)) {
      report.models.unchanged++;
    } else {
      // Absent in the export means no pool: clear it here too.
      must(models.update(model.id, { ...model, pool: model.pool }));
      report.models.updated++;
    }
  }
  for (const w of doc.workers) {
    if (!mine(w.id)) report.workers.otherPool++;
    else if (stores.workers.get(w.id)) report.workers.existing++;
    else {
      stores.workers.create({
        id: w.id,
        label: w.label,
        machineName: w.machineName,
        installId: w.installId,
        capabilities: w.capabilities === undefined ? null : JSON.stringify(w.capabilities),
        tokenHash: w.tokenHash,
        now: w.approvedAt,
      });
      if (w.consecutiveFailures > 0 || w.cooldownUntil !== null) stores.workers.carryFailures(w.id, w.consecutiveFailures, w.cooldownUntil);
      report.workers.added++;
    }
  }
  for (const j of doc.jobs) {
    if (!mine(j.id)) {
      report.jobs.otherPool++;
      continue;
    }
    if (store.get(j.id)) {
      report.jobs.existing++;
      continue;
    }
    // A claim held in the old studio is over: the job runs again with its next attempt.
    const held = j.status !== 'queued';
    const seq = jobs.nextSeq();
    store.insert(
      {
        id: j.id,
        seq,
        model: j.model,
        kind: j.kind,
        engine: j.engine,
        task: JSON.stringify(j.task),
        modelSource: JSON.stringify(j.modelSource),
        vramGbEstimate: j.vramGbEstimate,
        gameId: j.gameId,
        assetName: j.assetName,
        prompt: j.prompt,
        priority: j.priority,
        maxAttempts: j.maxAttempts,
        now: j.createdAt,
      },
      undefined,
      { attempt: held ? j.attempt + 1 : j.attempt, failures: j.failures, losses: j.losses, notBefore: held ? 0 : j.notBefore, lastError: j.lastError },
    );
    added.push({ id: j.id, kind: j.kind, engine: j.engine, vramGbEstimate: j.vramGbEstimate, needs: featuresNeededBy(j.modelSource) });
    report.jobs.added++;
  }
}

/** A write the checks before the transaction made sure of; if it fails after all, everything rolls back. */
function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function sameModel(current: ModelEntry, next: ModelEntry): boolean {
  const pick = (m: ModelEntry) => JSON.stringify([m.kind, m.displayName, m.description, m.vramGbEstimate, m.enabled, withEngineDefaults(m.source), m.pool]);
  return pick(current) === pick(next);
}
