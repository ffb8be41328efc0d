import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { StudioClient } from '@studio-worker/client';
import { exportStudio, ImportReport, StudioExport } from '../core/index.ts';
import { NodeSql } from './sqlite.ts';

/** Each import request stays well under the studio's JSON body cap (4 MiB by default). */
const PART_BYTES = 2 * 1024 * 1024;

/**
 * `studio export` and `studio import`: move a studio to another host (the embedded one → the
 * Cloudflare one). Export reads the data directory's SQLite directly (plain SELECTs, also while
 * that studio runs) and prints one JSON document; import sends it to a running studio's
 * `POST /graphics/api/admin/import` in parts (models and workers first, then the jobs in order),
 * each stored whole or not at all; importing again is safe, so a stopped import is simply re-run.
 */
export function registerTransferCommands(program: Command): void {
  program
    .command('export')
    .description('print the models, workers (with token hashes) and unfinished jobs of a studio as JSON, for "studio import"')
    .option('--data-dir <dir>', 'the studio data directory', process.env.STUDIO_DATA_DIR ?? '.data/studio')
    .action((opts: { dataDir: string }) => {
      const path = join(resolve(opts.dataDir), 'studio.sqlite');
      if (!existsSync(path)) throw new Error(`no studio database at ${path}; pass --data-dir`);
      const sql = new NodeSql(path);
      let doc: StudioExport;
      try {
        doc = exportStudio(sql, Date.now());
      } finally {
        sql.close();
      }
      process.stdout.write(`${JSON.stringify(doc)}\n`);
      process.stderr.write(`exported ${doc.models.length} models, ${doc.workers.length} workers and ${doc.jobs.length} unfinished jobs from ${path}\n`);
    });

  program
    .command('import')
    .description('send a "studio export" document to a running studio (admin token); safe to run again')
    .argument('<file>', 'a file written by "studio export"')
    .option('--url <url>', 'the studio (default: $STUDIO_URL, else http://127.0.0.1:4780)')
    .option('--token <token>', 'its admin token (default: $STUDIO_TOKEN)')
    .action(async (file: string, opts: { url?: string; token?: string }) => {
      const token = opts.token ?? process.env.STUDIO_TOKEN ?? process.env.STUDIO_ADMIN_TOKEN;
      if (!token) throw new InvalidArgumentError('no token: pass --token (or set STUDIO_TOKEN) to the admin token of the studio to import into');
      const doc = readExport(resolve(file));
      const client = new StudioClient({ url: opts.url ?? process.env.STUDIO_URL ?? 'http://127.0.0.1:4780', token });
      const parts = splitExport(doc, PART_BYTES);
      const total: ImportReport = { models: { added: 0, updated: 0, unchanged: 0 }, workers: { added: 0, existing: 0, otherPool: 0 }, jobs: { added: 0, existing: 0, otherPool: 0 } };
      for (const [index, part] of parts.entries()) {
        let report: ImportReport;
        try {
          report = ImportReport.parse(await client.json('POST', '/admin/import', part));
        } catch (error) {
          const stored = index === 0 ? 'nothing was stored' : `parts 1 to ${index} were stored`;
          throw new Error(`import stopped at part ${index + 1} of ${parts.length} (${stored}; running it again is safe): ${(error as Error).message}`);
        }
        for (const group of ['models', 'workers', 'jobs'] as const) {
          const sum = total[group] as Record<string, number>;
          for (const [key, n] of Object.entries(report[group])) sum[key] = (sum[key] ?? 0) + n;
        }
      }
      process.stdout.write(`${JSON.stringify(total)}\n`);
      process.stderr.write(
        `imported into ${client.baseUrl}: models ${total.models.added} added, ${total.models.updated} updated; workers ${total.workers.added} added, ${total.workers.existing} already there; jobs ${total.jobs.added} queued, ${total.jobs.existing} already there\n`,
      );
    });
}

/** The file as an export, or a message that says what is wrong with it. */
function readExport(path: string): StudioExport {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not JSON (${(error as Error).message}); give the file "studio export" wrote`);
  }
  const parsed = StudioExport.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path} is not a studio export this version reads: ${issue?.path.join('.') || '(document)'}: ${issue?.message}`);
  }
  return parsed.data;
}

/** The document in parts of about `maxBytes`: models and workers with the first jobs, then the rest of the jobs in order. */
export function splitExport(doc: StudioExport, maxBytes: number): StudioExport[] {
  const parts: StudioExport[] = [];
  let current: StudioExport = { ...doc, jobs: [] };
  let size = JSON.stringify(current).length;
  for (const job of doc.jobs) {
    const bytes = JSON.stringify(job).length + 1;
    if (current.jobs.length > 0 && size + bytes > maxBytes) {
      parts.push(current);
      current = { ...doc, models: [], workers: [], jobs: [] };
      size = JSON.stringify(current).length;
    }
    current.jobs.push(job);
    size += bytes;
  }
  parts.push(current);
  return parts;
}
