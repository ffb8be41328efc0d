import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/** One record of a backfill's state file (JSON lines, appended as things happen). */
type StateRecord = { k: string; job: string } | { k: string; file: string } | { k: string; end: string };

/**
 * What a backfill has done so far, kept in a JSON-lines file so a re-run resumes: the job each key
 * made (not submitted again) and the file each result went to (not downloaded again). Appends are
 * synchronous, one line each, so Ctrl-C or a crash loses at most the line being written — and a
 * torn last line is skipped on reading (the idempotency key still makes its job once).
 */
export class BackfillState {
  readonly path: string;
  readonly jobs = new Map<string, string>();
  readonly files = new Map<string, string>();
  readonly ended = new Map<string, string>();

  constructor(path: string) {
    this.path = path;
    if (!existsSync(path)) return;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      let record: StateRecord;
      try {
        record = JSON.parse(line) as StateRecord;
      } catch {
        continue;
      }
      if ('job' in record) this.jobs.set(record.k, record.job);
      else if ('file' in record) this.files.set(record.k, record.file);
      else if ('end' in record) this.ended.set(record.k, record.end);
    }
  }

  submitted(records: ReadonlyArray<{ key: string; jobId: string }>): void {
    if (records.length === 0) return;
    this.append(records.map(({ key, jobId }) => ({ k: key, job: jobId })));
    for (const { key, jobId } of records) this.jobs.set(key, jobId);
  }

  downloaded(key: string, file: string): void {
    this.append([{ k: key, file }]);
    this.files.set(key, file);
  }

  end(key: string, status: string): void {
    this.append([{ k: key, end: status }]);
    this.ended.set(key, status);
  }

  private append(records: StateRecord[]): void {
    appendFileSync(this.path, records.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
  }
}
