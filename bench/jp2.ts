// scratch: pipelined job path (not committed)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { JobStore, type NewJob } from '../packages/studio/src/core/job-store.ts';
import { jobId } from '../packages/studio/src/core/jobs.ts';
import { migrate } from '../packages/studio/src/core/schema.ts';
import { WorkerStore } from '../packages/studio/src/core/worker-store.ts';
import { NodeSql } from '../packages/studio/src/node/sqlite.ts';

const { values } = parseArgs({ options: { ddl: { type: 'string' }, cache: { type: 'string', default: '64' }, nosp: { type: 'boolean' }, jobs: { type: 'string', default: '30000' }, k: { type: 'string', default: '37' }, depth: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' }, pragma: { type: 'string' } } });
const JOBS = Number(values.jobs), K = Number(values.k), DEPTH = Number(values.depth), ROUNDS = Number(values.rounds);
const TASK = JSON.stringify({ kind: 'llm', messages: [{ role: 'user', content: 'bench 1' }], maxTokens: 1 });
const SOURCE = JSON.stringify({ engine: 'synthetic', files: [] });
const WORKERS = 100;
type Step = 'insert' | 'claim' | 'accept' | 'complete' | 'commit';
function round(seqStart: number, dir: string) {
  const sql = new NodeSql(join(dir, `r${seqStart}.sqlite`), { groupCommit: true, backgroundCheckpoints: true, cacheMiB: Number(values.cache) });
  migrate(sql);
  if (values.ddl) sql.exec(values.ddl);
  if (values.pragma) sql.db.exec(values.pragma);
  sql.commit();
  const jobs = new JobStore(sql); const workers = new WorkerStore(sql);
  const ids = Array.from({ length: WORKERS }, (_, i) => `w${i}`);
  for (const id of ids) sql.run(`INSERT INTO workers (id, label, machine_name, approved_at) VALUES (?, ?, 'box', 0)`, id, id);
  sql.commit(); jobs.recount();
  const spent: Record<Step, number> = { insert: 0, claim: 0, accept: 0, complete: 0, commit: 0 };
  let t = 0; let seq = seqStart; let w = 0;
  const time = (step: Step, fn: () => void) => { const t0 = performance.now(); fn(); spent[step] += performance.now() - t0; };
  const ins = (n: number) => { for (let i = 0; i < n; i++) { seq++; jobs.insert({ id: jobId(seq, '00beef'), seq, model: 'synthetic-llm', kind: 'llm', engine: 'synthetic', task: TASK, modelSource: SOURCE, vramGbEstimate: 0, gameId: '', assetName: '', prompt: 'bench', priority: 0, maxAttempts: 3, now: ++t } as NewJob); } };
  ins(DEPTH); sql.commit();
  let claimed: Array<{ id: string; worker: string }> = []; let accepted: typeof claimed = [];
  for (let done = 0; done < JOBS; done += K) {
    time('insert', () => ins(K));
    const next: typeof claimed = [];
    time('claim', () => { for (let i = 0; i < K; i++) { const worker = ids[(w++) % WORKERS]!; const row = jobs.claimNextFor(worker, ['llm synthetic'], 12, [], t, t + 60_000, false); if (row) next.push({ id: row.id, worker }); } });
    time('complete', () => { for (const c of accepted) { const f = () => { jobs.complete(c.id, c.worker, 1, { type: 'json', json: '{"ok":true}' }, t); workers.resetFailures(c.worker); }; values.nosp ? f() : sql.transaction(f); } });
    time('accept', () => { for (const c of claimed) jobs.markRunning(c.id, c.worker, 1, t, t + 60_000); });
    accepted = claimed; claimed = next;
    time('commit', () => sql.commit());
  }
  sql.close();
  return spent;
}
const dir = mkdtempSync(join(tmpdir(), 'jp2-'));
try {
  const best: Partial<Record<Step, number>> = {};
  for (let r = 0; r < ROUNDS; r++) { const s = round(1 + r * 10_000_000, dir); for (const [k, v] of Object.entries(s) as Array<[Step, number]>) best[k] = Math.min(best[k] ?? Infinity, v); }
  let total = 0; const parts: string[] = [];
  for (const [k, ms] of Object.entries(best)) { const us = (ms * 1000) / JOBS; total += us; parts.push(`${k} ${us.toFixed(1)}`); }
  console.log(`${parts.join('  ')}  total ${total.toFixed(1)} µs/job`);
} finally { rmSync(dir, { recursive: true, force: true }); }
