import { mkdirSync, readFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StudioApiError, type StudioClient } from '@studio-worker/client';
import type { JobView } from '@studio-worker/protocol';
import { parseBackfill, type BackfillEntry } from './input.ts';
import { formatDuration, ProgressReporter, progressLine } from './progress.ts';
import { assetPath, saveResult, withExt } from './results.ts';
import { BackfillState } from './state.ts';

export interface BackfillOptions {
  file: string;
  format?: 'jsonl' | 'csv';
  wait: boolean;
  out?: string;
  statePath?: string;
  keyPrefix: string;
  pollMs: number;
  progressMs: number;
  batchSize: number;
  downloads: number;
}

export interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

export const EXIT = { ok: 0, failedJobs: 1, badInput: 2, interrupted: 130 } as const;

/**
 * `studio jobs submit --file`: submit every line (in batches, each under its line's deterministic
 * idempotency key), then optionally wait, saving each result as it finishes. The state file makes a
 * re-run resume; the keys make even a lost state file safe (the studio answers the jobs it made).
 */
export async function runBackfill(client: StudioClient, opts: BackfillOptions, io: Io, signal: AbortSignal): Promise<number> {
  const format = opts.format ?? (extname(opts.file).toLowerCase() === '.csv' ? 'csv' : 'jsonl');
  let text: string;
  try {
    text = readFileSync(opts.file, 'utf8');
  } catch (error) {
    io.stderr.write(`studio: cannot read ${opts.file}: ${(error as Error).message}\n`);
    return EXIT.badInput;
  }
  const parsed = parseBackfill(text, format, opts.keyPrefix);
  if (!parsed.ok) {
    io.stderr.write(`studio: ${opts.file} has ${parsed.errors.length} bad line(s); nothing was submitted:\n${parsed.errors.slice(0, 20).map((e) => `  ${e}\n`).join('')}`);
    return EXIT.badInput;
  }
  const entries = parsed.entries;
  const out = opts.out ? resolve(opts.out) : undefined;
  if (out) mkdirSync(out, { recursive: true });
  const statePath = opts.statePath ?? (out ? join(out, `.${basename(opts.file)}.state.jsonl`) : `${opts.file}.state.jsonl`);
  const state = new BackfillState(statePath);
  const names = out ? resultNames(entries) : new Map<string, string>();
  const progress = new ProgressReporter(io.stderr, opts.progressMs);
  const started = Date.now();

  try {
    // ------------------------------------------------------------ submit what the state does not know
    const toSubmit = entries.filter((e) => !state.jobs.has(e.key));
    let created = 0;
    for (let i = 0; i < toSubmit.length; i += opts.batchSize) {
      signal.throwIfAborted();
      const batch = toSubmit.slice(i, i + opts.batchSize);
      let answer;
      try {
        answer = await client.createJobs(batch.map((e) => ({ ...e.request, key: e.key })));
      } catch (error) {
        if (error instanceof StudioApiError && error.status > 0) {
          const message = error.message.replace(/jobs\[(\d+)\]/g, (_, n: string) => `line ${batch[Number(n)]?.line ?? '?'}`);
          io.stderr.write(`studio: the studio refused the batch (${error.status} ${error.code}): ${message}\n`);
          return EXIT.badInput;
        }
        throw error;
      }
      created += answer.created;
      state.submitted(batch.map((e, j) => ({ key: e.key, jobId: (answer.jobs[j] as JobView).id })));
      progress.update(`submitting: ${Math.min(i + batch.length, toSubmit.length)}/${toSubmit.length}`);
    }
    const earlier = entries.length - toSubmit.length;
    progress.note(`${entries.length} jobs: ${created} new, ${toSubmit.length - created} already on the studio (same keys), ${earlier} submitted by an earlier run; state in ${statePath}`);
    if (!opts.wait) return EXIT.ok;

    // ------------------------------------------------------------ follow, saving results as they finish
    const settled = (e: BackfillEntry) => state.ended.has(e.key) || state.files.has(e.key);
    const live = new Map<string, JobView['status']>();
    const failures: string[] = [];
    let finishedThisRun = 0;
    let savedThisRun = 0;
    const downloadFailures = new Map<string, number>();
    let away = false;
    follow: for (;;) {
      const open = entries.filter((e) => !settled(e));
      const toSave: Array<{ entry: BackfillEntry; job: JobView }> = [];
      for (let i = 0; i < open.length; i += 1000) {
        const chunk = open.slice(i, i + 1000);
        let jobs: JobView[];
        try {
          ({ jobs } = await client.lookup(chunk.map((e) => state.jobs.get(e.key) as string)));
        } catch (error) {
          if (!unavailable(error)) throw error;
          // A studio restarting or away for a while: the jobs are safe in its database, so a long
          // backfill waits for it instead of giving up (the original lost jobs to every restart).
          if (!away) progress.note(`the studio is not answering (${(error as Error).message}); waiting for it — Ctrl-C stops, a re-run resumes`);
          away = true;
          await sleep(opts.pollMs * 5, undefined, { signal });
          continue follow;
        }
        if (away) progress.note('the studio answers again');
        away = false;
        const byId = new Map(jobs.map((j) => [j.id, j]));
        for (const entry of chunk) {
          const job = byId.get(state.jobs.get(entry.key) as string);
          if (!job) {
            state.end(entry.key, 'missing');
            failures.push(`line ${entry.line}: job ${state.jobs.get(entry.key)} no longer exists on the studio`);
            continue;
          }
          live.set(entry.key, job.status);
          if (job.status === 'done') {
            if (out) toSave.push({ entry, job });
            else state.end(entry.key, 'done');
            finishedThisRun++;
          } else if (job.status === 'failed' || job.status === 'cancelled') {
            state.end(entry.key, job.status);
            finishedThisRun++;
            const line = `line ${entry.line}${label(entry)}: job ${job.id} ${job.status}${job.lastError ? `: ${job.lastError}` : ''}`;
            failures.push(line);
            progress.note(line);
          }
        }
      }
      await pool(toSave, opts.downloads, async ({ entry, job }) => {
        signal.throwIfAborted();
        const file = withExt(names.get(entry.key) ?? job.id, job.result?.type === 'file' ? job.result.ext : 'json');
        try {
          await saveResult(client, job.id, join(out as string, file), signal);
        } catch (error) {
          if (signal.aborted) throw error;
          // Tried again at the next poll; a result that cannot be fetched three times counts as
          // failed (a studio that is away does not count: the next lookup waits for it).
          if (unavailable(error)) return;
          const tries = (downloadFailures.get(entry.key) ?? 0) + 1;
          downloadFailures.set(entry.key, tries);
          progress.note(`line ${entry.line}${label(entry)}: saving the result of ${job.id} failed (${(error as Error).message})${tries >= 3 ? '; giving up' : '; will try again'}`);
          if (tries >= 3) {
            state.end(entry.key, 'download_failed');
            failures.push(`line ${entry.line}${label(entry)}: the result of ${job.id} could not be saved: ${(error as Error).message}`);
          }
          return;
        }
        state.downloaded(entry.key, file);
        savedThisRun++;
      });
      const counts = tally(entries, state, live);
      const line = progressLine(counts, finishedThisRun, Date.now() - started);
      if (counts.done + counts.failed === counts.total && entries.every(settled)) {
        progress.finish(line);
        break;
      }
      progress.update(line);
      await sleep(opts.pollMs, undefined, { signal });
    }

    const counts = tally(entries, state, live);
    const saved = out ? `; ${state.files.size} results in ${out} (${savedThisRun} saved by this run)` : '';
    io.stdout.write(`done ${counts.done}, failed ${counts.failed} of ${counts.total} in ${formatDuration(Date.now() - started)}${saved}\n`);
    if (counts.failed > 0) {
      const listed = failures.length ? failures : [...state.ended].filter(([, s]) => s !== 'done').map(([k, s]) => `key ${k}: ${s}`);
      io.stdout.write(`failed jobs (retry them with "studio jobs retry <id>", then re-run this command):\n${listed.slice(0, 20).map((f) => `  ${f}\n`).join('')}`);
      return EXIT.failedJobs;
    }
    return EXIT.ok;
  } catch (error) {
    if (signal.aborted) {
      progress.note(`interrupted: ${state.jobs.size}/${entries.length} submitted, ${state.files.size} saved; run the same command again to resume (state in ${statePath})`);
      return EXIT.interrupted;
    }
    throw error;
  }
}

/** The studio did not answer (or a proxy said it is away) even after the client's own retries. */
function unavailable(error: unknown): boolean {
  return error instanceof StudioApiError && [0, 502, 503, 504].includes(error.status);
}

function label(entry: BackfillEntry): string {
  const name = [entry.request.gameId, entry.request.assetName].filter(Boolean).join('/');
  return name ? ` (${name})` : '';
}

function tally(entries: readonly BackfillEntry[], state: BackfillState, live: Map<string, JobView['status']>) {
  const c = { total: entries.length, done: 0, failed: 0, running: 0, queued: 0, downloaded: state.files.size };
  for (const e of entries) {
    const ended = state.files.has(e.key) ? 'done' : state.ended.get(e.key);
    const status = ended ?? live.get(e.key) ?? 'queued';
    if (status === 'done') c.done++;
    else if (status === 'running' || status === 'claimed') c.running++;
    else if (status === 'queued') c.queued++;
    else c.failed++;
  }
  return c;
}

/**
 * Result file names (without extension) under --out: gameId/assetName when the job names them
 * (see assetPath), else the line number. Two lines naming the same asset get "-line<N>" on the later one, decided from the file
 * alone so every run names every result the same.
 */
export function resultNames(entries: readonly BackfillEntry[]): Map<string, string> {
  const names = new Map<string, string>();
  const used = new Set<string>();
  for (const e of entries) {
    let name = assetPath(e.request.gameId, e.request.assetName) ?? `line-${e.line}`;
    if (used.has(name)) name = `${name}-line${e.line}`;
    used.add(name);
    names.set(e.key, name);
  }
  return names;
}

async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}
