import { createHash } from 'node:crypto';
import { describeIssues, KeyedJobRequest, type CreateJobRequest } from '@studio-worker/protocol';

/** One job of a backfill file: its line, its body and the idempotency key that makes re-runs safe. */
export interface BackfillEntry {
  line: number;
  key: string;
  request: CreateJobRequest;
}

export type ParsedInput = { ok: true; entries: BackfillEntry[] } | { ok: false; errors: string[] };

/**
 * Read a JSONL file (one POST /jobs body per line, optionally with a `key`) or a CSV file (a header
 * row naming columns; see CSV_COLUMNS). Every line is checked before anything is sent: a file with
 * a bad line is refused whole, with every bad line named.
 *
 * A line without its own key gets a deterministic one: a hash of the validated body and how many
 * identical bodies came before it in the file. The same file sent again (after Ctrl-C, a crash, an
 * edit that appends lines) makes no job twice; a line edited in place is a new job.
 */
export function parseBackfill(text: string, format: 'jsonl' | 'csv', keyPrefix: string): ParsedInput {
  const raw = format === 'csv' ? csvObjects(text) : jsonlObjects(text);
  const errors = [...raw.errors];
  const entries: BackfillEntry[] = [];
  const seen = new Map<string, number>();
  for (const { line, value } of raw.rows) {
    const parsed = KeyedJobRequest.safeParse(value);
    if (!parsed.success) {
      errors.push(`line ${line}: ${describeIssues(parsed.error)}`);
      continue;
    }
    const { key, ...request } = parsed.data;
    const body = JSON.stringify(request);
    const occurrence = seen.get(body) ?? 0;
    seen.set(body, occurrence + 1);
    const derived = `${keyPrefix}-${createHash('sha256').update(`${body}\n${occurrence}`).digest('hex').slice(0, 40)}`;
    entries.push({ line, key: key ?? derived, request });
  }
  const keys = new Map<string, number>();
  for (const entry of entries) {
    const first = keys.get(entry.key);
    if (first !== undefined) errors.push(`line ${entry.line}: key "${entry.key}" is already used on line ${first}; give each job its own key`);
    else keys.set(entry.key, entry.line);
  }
  if (errors.length > 0) return { ok: false, errors };
  if (entries.length === 0) return { ok: false, errors: ['the file holds no jobs'] };
  return { ok: true, entries };
}

/** The lines that parsed, and what was wrong with the others (both: every bad line is named at once). */
type Rows = { rows: Array<{ line: number; value: unknown }>; errors: string[] };

function jsonlObjects(text: string): Rows {
  const rows: Array<{ line: number; value: unknown }> = [];
  const errors: string[] = [];
  for (const [index, content] of text.split('\n').entries()) {
    const trimmed = content.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    try {
      rows.push({ line: index + 1, value: JSON.parse(trimmed) });
    } catch (error) {
      errors.push(`line ${index + 1}: not valid JSON (${(error as Error).message})`);
    }
  }
  return { rows, errors };
}

/**
 * CSV columns. `task` holds a whole task as JSON; otherwise an image task is built from `prompt`
 * and the optional size, steps, seed, cfgScale, negativePrompt and ext columns.
 */
export const CSV_COLUMNS = ['model', 'prompt', 'gameId', 'assetName', 'priority', 'maxAttempts', 'key', 'task', 'width', 'height', 'steps', 'seed', 'cfgScale', 'negativePrompt', 'ext'] as const;
const NUMERIC = new Set(['priority', 'maxAttempts', 'width', 'height', 'steps', 'seed', 'cfgScale']);
const TASK_FIELDS = new Set(['prompt', 'width', 'height', 'steps', 'seed', 'cfgScale', 'negativePrompt', 'ext']);

function csvObjects(text: string): Rows {
  const records = parseCsv(text);
  const header = records.shift();
  if (!header) return { rows: [], errors: ['the CSV file is empty; its first row names the columns'] };
  const unknown = header.cells.filter((name) => !(CSV_COLUMNS as readonly string[]).includes(name));
  if (unknown.length) return { rows: [], errors: [`unknown CSV column(s) ${unknown.join(', ')}; known: ${CSV_COLUMNS.join(', ')}`] };
  const rows: Array<{ line: number; value: unknown }> = [];
  const errors: string[] = [];
  for (const record of records) {
    if (record.cells.every((cell) => cell === '')) continue;
    const job: Record<string, unknown> = {};
    const task: Record<string, unknown> = { kind: 'image' };
    for (const [i, name] of header.cells.entries()) {
      const cell = record.cells[i] ?? '';
      if (cell === '') continue;
      const value = NUMERIC.has(name) ? Number(cell) : cell;
      if (name === 'task') {
        try {
          Object.assign(task, JSON.parse(cell));
        } catch {
          errors.push(`line ${record.line}: the task column is not valid JSON`);
        }
      } else if (TASK_FIELDS.has(name)) task[name] = value;
      else job[name] = value;
    }
    rows.push({ line: record.line, value: { ...job, task } });
  }
  return { rows, errors };
}

/** RFC 4180: quoted fields may hold commas, doubled quotes and newlines. `line` is where a record starts. */
function parseCsv(text: string): Array<{ line: number; cells: string[] }> {
  const out: Array<{ line: number; cells: string[] }> = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        cell += ch;
      }
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      cells.push(cell);
      out.push({ line: start, cells });
      cells = [];
      cell = '';
      line++;
      start = line;
    } else cell += ch;
  }
  if (cell !== '' || cells.length) {
    cells.push(cell);
    out.push({ line: start, cells });
  }
  return out.map((r) => ({ line: r.line, cells: r.cells.map((c) => c.trim()) }));
}
