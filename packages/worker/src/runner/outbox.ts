import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { Attempt, FailCode } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { isAtomicTempName, writeFileAtomic } from '../config/atomic-file.ts';
import { byCodePoint } from '../platform/order.ts';

const JsonPayload = z.object({ kind: z.literal('json'), prompt: z.string(), result: z.unknown() });
const FilePayload = z.object({ kind: z.literal('file'), prompt: z.string(), ext: z.string(), bytes: z.number().int().nonnegative() });
const FailPayload = z.object({ kind: z.literal('fail'), error: z.string(), retryable: z.boolean(), code: FailCode });
const EntryMeta = z.object({
  jobId: z.string().min(1),
  attempt: Attempt.optional(),
  createdAt: z.string(),
  /** Order of creation within the outbox (createdAt can tie). */
  seq: z.number().int().nonnegative(),
});
const StoredEntry = z.intersection(EntryMeta, z.discriminatedUnion('kind', [JsonPayload, FilePayload, FailPayload]));

export type OutboxEntry = z.infer<typeof StoredEntry> & { key: string };
export type OutboxPayload =
  | z.infer<typeof JsonPayload>
  | (Omit<z.infer<typeof FilePayload>, 'bytes'> & { body: Uint8Array })
  | z.infer<typeof FailPayload>;
export type OutboxKind = OutboxEntry['kind'];

const META_SUFFIX = '.json';
const BODY_SUFFIX = '.bin';

/**
 * The file name stem for a (jobId, attempt as the studio sent it): job ids are arbitrary text, file
 * names are not. The outbox keeps what goes back on the wire, so a claim from a studio that numbers
 * no attempts has none here (runner/claim.ts); `0` stands for that in names already on disk.
 */
export function outboxKey(jobId: string, attempt: number | undefined): string {
  return createHash('sha256').update(`${jobId}\n${attempt ?? 0}`).digest('hex').slice(0, 32);
}

/**
 * Finished results and failures waiting for the studio's acknowledgement (DESIGN.md worker rule 3).
 * Each entry is `<key>.json` (metadata, JSON results inline) plus `<key>.bin` for a binary result;
 * both are written atomically, the body first, so a crash never leaves metadata without its body.
 * One entry per (jobId, attempt): a newer write for the same claim replaces the older one.
 */
export class Outbox {
  readonly dir: string;
  readonly #log: Logger;
  readonly #entries = new Map<string, OutboxEntry>();
  readonly #listeners = new Set<() => void>();
  #chain: Promise<unknown> = Promise.resolve();
  #seq = 0;

  private constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.#log = log;
  }

  /** Open (and create) the outbox directory, loading what a previous run left behind. */
  static async open(dir: string, log: Logger): Promise<Outbox> {
    const outbox = new Outbox(dir, log);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await outbox.#load();
    return outbox;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Oldest first. */
  entries(): OutboxEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.seq - b.seq);
  }

  get(key: string): OutboxEntry | undefined {
    return this.#entries.get(key);
  }

  /** Entries for a job; with `attempt`, only that attempt (entries without one match any). */
  find(jobId: string, attempt?: number, kinds?: readonly OutboxKind[]): OutboxEntry[] {
    return this.entries().filter(
      (entry) =>
        entry.jobId === jobId &&
        (attempt === undefined || entry.attempt === undefined || entry.attempt === attempt) &&
        (kinds === undefined || kinds.includes(entry.kind)),
    );
  }

  bodyPath(entry: Pick<OutboxEntry, 'key'>): string {
    return join(this.dir, `${entry.key}${BODY_SUFFIX}`);
  }

  /** Store a result or failure for (jobId, attempt); resolves once it is on disk. */
  put(jobId: string, attempt: number | undefined, payload: OutboxPayload): Promise<OutboxEntry> {
    return this.#serial(async () => {
      const key = outboxKey(jobId, attempt);
      const meta = { jobId, ...(attempt === undefined ? {} : { attempt }), createdAt: new Date().toISOString(), seq: ++this.#seq };
      let entry: OutboxEntry;
      if (payload.kind === 'file') {
        const { body, ...rest } = payload;
        await writeFileAtomic(this.bodyPath({ key }), body, 0o600);
        entry = { ...meta, ...rest, bytes: body.byteLength, key };
      } else {
        entry = { ...meta, ...payload, key };
      }
      const { key: _key, ...stored } = entry;
      await writeFileAtomic(join(this.dir, `${key}${META_SUFFIX}`), JSON.stringify(stored), 0o600);
      if (entry.kind !== 'file') await rm(this.bodyPath({ key }), { force: true });
      this.#entries.set(key, entry);
      this.#changed();
      return entry;
    });
  }

  /** Forget an entry (acknowledged, refused or replaced). Removing a missing entry is a no-op. */
  remove(key: string): Promise<void> {
    return this.#serial(async () => {
      if (!this.#entries.has(key)) return;
      // Metadata first: a crash in between leaves only an orphan body, which the next load deletes.
      await rm(join(this.dir, `${key}${META_SUFFIX}`), { force: true });
      await rm(this.bodyPath({ key }), { force: true });
      this.#entries.delete(key);
      this.#changed();
    });
  }

  /** Called after every put or remove. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(work, work);
    this.#chain = next.catch(() => {});
    return next;
  }

  async #load(): Promise<void> {
    const names = await readdir(this.dir);
    const bodies = new Set(names.filter((name) => name.endsWith(BODY_SUFFIX)).map((name) => name.slice(0, -BODY_SUFFIX.length)));
    const loaded: OutboxEntry[] = [];
    for (const name of names) {
      if (isAtomicTempName(name)) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      if (!name.endsWith(META_SUFFIX)) continue;
      const key = name.slice(0, -META_SUFFIX.length);
      const entry = await this.#readEntry(key);
      if (!entry) continue;
      if (entry.kind === 'file' && !bodies.has(key)) {
        this.#log.warn({ op: 'outbox', jobId: entry.jobId }, 'outbox entry lost its result file; dropping it (the studio will hand the job out again)');
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      loaded.push(entry);
    }
    loaded.sort((a, b) => a.seq - b.seq || byCodePoint(a.createdAt, b.createdAt));
    for (const entry of loaded) {
      this.#entries.set(entry.key, entry);
      this.#seq = Math.max(this.#seq, entry.seq);
    }
    for (const key of bodies) {
      const entry = this.#entries.get(key);
      if (!entry || entry.kind !== 'file') await rm(this.bodyPath({ key }), { force: true });
    }
    if (loaded.length > 0) this.#log.info({ op: 'outbox', entries: loaded.length }, `outbox holds ${loaded.length} undelivered result(s) from an earlier run`);
  }

  async #readEntry(key: string): Promise<OutboxEntry | null> {
    const path = join(this.dir, `${key}${META_SUFFIX}`);
    try {
      const parsed = StoredEntry.safeParse(JSON.parse(await readFile(path, 'utf8')));
      if (parsed.success) return { ...parsed.data, key };
      this.#log.warn({ op: 'outbox', file: path }, 'unreadable outbox entry; moving it aside');
    } catch {
      this.#log.warn({ op: 'outbox', file: path }, 'corrupt outbox entry; moving it aside');
    }
    // Kept for a human to look at, under a name the next load skips.
    await rename(path, `${path}.corrupt`).catch(() => {});
    return null;
  }
}
