// The chaos run behind `npm run chaos` and the chaos test: a real studio and real worker processes,
// hundreds (or thousands) of jobs, while workers are killed with SIGKILL and restarted, the studio
// is killed and restarted, and connections are cut by a TCP proxy. Then an oracle reads the studio's
// database and result files and checks that nothing was lost or accepted twice.
//
// On either host (test/helpers/hosts.ts). On the Cloudflare host (under Miniflare) a studio kill -9
// kills the launcher's process group (workerd with it) and starts it again on the same data dir;
// the oracle reads the Durable Object's SQLite file and R2 over the same persistence once the
// studio has stopped (test/helpers/stored-state.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { TaskInput } from '@studio-worker/protocol';
import {
  renderSyntheticImage,
  renderSyntheticWav,
  syntheticChatCompletion,
  syntheticTranscript,
} from '../../packages/worker/src/engines/synthetic/index.ts';
import type { StudioHost } from '../helpers/hosts.ts';
import { startStudioProcess, startWorkerProcess, writeWorkerConfig, type Proc, type StudioProc } from '../helpers/processes.ts';
import { openStoredResults, studioDatabaseFile } from '../helpers/stored-state.ts';
import { FREE_UPLOADS } from '../../packages/studio/src/core/sessions.ts';
import { TcpProxy } from './tcp-proxy.ts';

export interface ChaosOptions {
  jobs: number;
  workers: number;
  /** Seed for the job mix and the chaos schedule (printed, so a failing run can be replayed). */
  seed: number;
  /** Give up (and report what is not terminal) after this long. */
  timeoutMs: number;
  /** Average time between two chaos actions. */
  chaosEveryMs: number;
  studioRestarts: number;
  /** The studio host (unset: startStudioProcess's default, node unless STUDIO_E2E_HOST says otherwise). */
  host?: StudioHost;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface ChaosReport {
  jobs: number;
  lost: number;
  doubled: number;
  terminal: number;
  maxAttempt: number;
  workerKills: number;
  studioRestarts: number;
  connectionCuts: number;
  done: number;
  failed: number;
  /** Results whose bytes or JSON differ from the deterministic synthetic output. */
  wrongResults: number;
  /** Jobs whose failures exceed their cap. */
  overCap: number;
  /**
   * Moments a worker held more claims than it has slots: a slot freed while its claim still ran
   * (e.g. by a refused stale frame), so a second offer went to a busy worker.
   */
  overSlots: number;
  maxFailures: number;
  maxLosses: number;
  seconds: number;
  seed: number;
  problems: string[];
}

/** mulberry32: a small seeded PRNG, so a run can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function jobFor(i: number, random: () => number): { model: string; task: TaskInput } {
  const r = random();
  if (r < 0.35) return { model: 'synthetic-image', task: { kind: 'image', prompt: `chaos image ${i}`, width: 48, height: 32, ext: i % 2 ? 'png' : 'webp' } };
  if (r < 0.55) return { model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: `chaos question ${i}` }] } };
  if (r < 0.65) return { model: 'synthetic-stt', task: { kind: 'audio_stt', inputUrl: `https://example.invalid/chaos-${i}.wav` } };
  if (r < 0.75) return { model: 'synthetic-tts', task: { kind: 'audio_tts', text: `chaos ${i}` } };
  // Slow jobs, so kills and cuts land mid-job.
  return { model: 'chaos-slow-image', task: { kind: 'image', prompt: `chaos slow ${i}`, width: 32, height: 32, ext: 'png' } };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const random = prng(options.seed);
  const dir = mkdtempSync(join(tmpdir(), 'chaos-'));
  const dataDir = join(dir, 'studio');
  const started = Date.now();
  const report: ChaosReport = {
    jobs: options.jobs,
    lost: 0,
    doubled: 0,
    terminal: 0,
    maxAttempt: 0,
    workerKills: 0,
    studioRestarts: 0,
    connectionCuts: 0,
    done: 0,
    failed: 0,
    wrongResults: 0,
    overCap: 0,
    overSlots: 0,
    maxFailures: 0,
    maxLosses: 0,
    seconds: 0,
    seed: options.seed,
    problems: [],
  };
  // A short lease so claims of killed workers come back quickly.
  const startStudio = () => startStudioProcess({ dataDir, host: options.host, leaseSeconds: 2, env: { STUDIO_WORKER_LOG: 'warn', STUDIO_LOG_LEVEL: 'warn' } });
  let studio: StudioProc = await startStudio();
  const proxies: TcpProxy[] = [];
  const workers: Array<{ config: string; proc: Proc; name: string }> = [];
  const ids: string[] = [];
  try {
    await studio.api.json('POST', '/models', { id: 'chaos-slow-image', kind: 'image', source: { engine: 'synthetic', cliDefaults: { delayMs: 150 } } });
    for (let i = 0; i < options.workers; i++) {
      const proxy = new TcpProxy(studio.port);
      const proxyPort = await proxy.listen();
      proxies.push(proxy);
      const creds = await studio.api.createWorker(`chaos-${i}`);
      const config = join(dir, `worker-${i}`, 'config.toml');
      await writeWorkerConfig(config, { apiBaseUrl: `http://127.0.0.1:${proxyPort}/`, ...creds, shutdownGraceSecs: 1 });
      workers.push({ config, name: `w${i}`, proc: startWorkerProcess(config, { name: `w${i}`, env: { STUDIO_WORKER_LOG: 'warn' } }) });
    }

    for (let offset = 0; offset < options.jobs; offset += 1000) {
      const batch = Array.from({ length: Math.min(1000, options.jobs - offset) }, (_, k) => jobFor(offset + k, random));
      ids.push(...(await studio.api.createJobs(batch)).map((j) => j.id));
    }
    log(`created ${ids.length} jobs; ${options.workers} workers; seed ${options.seed}`);

    const deadline = started + options.timeoutMs;
    let restartsLeft = options.studioRestarts;
    let lastProgress = '';
    while (Date.now() < deadline) {
      let counts: Record<string, number> = {};
      try {
        counts = await studio.api.counts();
      } catch {
        // The studio may be restarting.
      }
      const terminal = (counts.done ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
      const progress = `${terminal}/${ids.length} terminal (queued ${counts.queued ?? 0}, claimed ${counts.claimed ?? 0}, running ${counts.running ?? 0})`;
      if (progress !== lastProgress) log(progress);
      lastProgress = progress;
      if (terminal === ids.length) break;

      await sleep(options.chaosEveryMs * (0.5 + random()));
      const roll = random();
      if (restartsLeft > 0 && terminal >= ids.length * (0.3 + 0.3 * (options.studioRestarts - restartsLeft))) {
        restartsLeft--;
        log('chaos: kill -9 the studio and start it again');
        await studio.proc.kill9();
        studio = await startStudio();
        for (const proxy of proxies) {
          proxy.upstreamPort = studio.port;
          proxy.cutAll();
        }
        report.studioRestarts++;
      } else if (roll < 0.5) {
        const victim = workers[Math.floor(random() * workers.length)];
        if (victim && victim.proc.alive) {
          log(`chaos: kill -9 ${victim.name}`);
          await victim.proc.kill9();
          report.workerKills++;
          await sleep(50 + random() * 300);
          victim.proc = startWorkerProcess(victim.config, { name: victim.name, env: { STUDIO_WORKER_LOG: 'warn' } });
        }
      } else {
        const proxy = proxies[Math.floor(random() * proxies.length)];
        const n = proxy?.cutAll() ?? 0;
        if (n > 0) log(`chaos: cut ${n} connection(s)`);
      }
      // A worker that died on its own (it should not) is restarted, and noted.
      for (const w of workers) {
        if (!w.proc.alive && w.proc.child.signalCode !== 'SIGKILL') {
          report.problems.push(`${w.name} exited by itself (${w.proc.child.exitCode}): ${w.proc.output.slice(-500)}`);
          w.proc = startWorkerProcess(w.config, { name: w.name, env: { STUDIO_WORKER_LOG: 'warn' } });
        }
      }
    }
  } finally {
    for (const w of workers) await w.proc.stop('SIGTERM', 5_000);
    for (const proxy of proxies) await proxy.close();
    await studio.stop();
  }

  await oracle(dataDir, ids, report);
  report.connectionCuts = proxies.reduce((n, p) => n + p.cuts, 0);
  report.seconds = Math.round((Date.now() - started) / 100) / 10;
  if (!options.keep) rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
  return report;
}

interface JobRowForOracle {
  id: string;
  status: string;
  task: string;
  attempt: number;
  failures: number;
  losses: number;
  max_attempts: number;
  result_type: string | null;
  result_json: string | null;
  result_file: string | null;
}

/** Read the studio's own database and files: the ground truth after the run. */
async function oracle(dataDir: string, ids: string[], report: ChaosReport): Promise<void> {
  const db = new DatabaseSync(studioDatabaseFile(dataDir), { readOnly: true });
  const results = await openStoredResults(dataDir);
  try {
    const rows = new Map((db.prepare('SELECT id, status, task, attempt, failures, losses, max_attempts, result_type, result_json, result_file FROM jobs').all() as unknown as JobRowForOracle[]).map((r) => [r.id, r]));
    const doneAttempts = new Map<string, number>();
    for (const r of db.prepare("SELECT job_id, COUNT(*) AS n FROM job_attempts WHERE outcome = 'done' GROUP BY job_id").all() as Array<{ job_id: string; n: number }>) {
      doneAttempts.set(r.job_id, r.n);
    }
    for (const id of ids) {
      const row = rows.get(id);
      if (!row) {
        report.lost++;
        report.problems.push(`job ${id} is missing from the database`);
        continue;
      }
      report.maxAttempt = Math.max(report.maxAttempt, row.attempt);
      report.maxFailures = Math.max(report.maxFailures, row.failures);
      report.maxLosses = Math.max(report.maxLosses, row.losses);
      if (row.failures > row.max_attempts) report.overCap++;
      if (row.status === 'done' || row.status === 'failed' || row.status === 'cancelled') report.terminal++;
      else {
        report.lost++;
        report.problems.push(`job ${id} ended the run ${row.status}`);
      }
      if (row.status === 'failed') report.failed++;
      const accepted = doneAttempts.get(id) ?? 0;
      if (accepted > 1) {
        report.doubled++;
        report.problems.push(`job ${id} has ${accepted} accepted results`);
      }
      if (row.status !== 'done') continue;
      report.done++;
      if (accepted !== 1) report.problems.push(`job ${id} is done but has ${accepted} accepted attempts recorded`);
      if (!(await resultMatches(results.read, row))) {
        report.wrongResults++;
        report.problems.push(`job ${id}: the stored result differs from the synthetic output`);
      }
    }
    claimsWithinSlots(db, report);
  } finally {
    db.close();
    await results.close();
  }
}

/**
 * Claims follow the worker's word: replay every attempt as an interval [offered, ended) per worker
 * and check that no worker ever held more at once than its slots (1, or with prefetch 2 plus the
 * FREE_UPLOADS that only upload their result). Zombies are caught above (every job terminal).
 */
function claimsWithinSlots(db: DatabaseSync, report: ChaosReport): void {
  const capacity = new Map<string, number>();
  for (const w of db.prepare('SELECT id, capabilities FROM workers').all() as Array<{ id: string; capabilities: string | null }>) {
    const caps = JSON.parse(w.capabilities ?? '{}') as { protocolFeatures?: string[]; prefetchSlots?: number };
    const prefetch = caps.protocolFeatures?.includes('prefetch') ? Math.min(caps.prefetchSlots ?? 0, 1) : 0;
    capacity.set(w.id, 1 + prefetch + (prefetch > 0 ? FREE_UPLOADS : 0));
  }
  const attempts = db.prepare('SELECT job_id, attempt, worker_id, offered_at, ended_at FROM job_attempts ORDER BY worker_id, offered_at').all() as Array<{
    job_id: string;
    attempt: number;
    worker_id: string;
    offered_at: number;
    ended_at: number;
  }>;
  const byWorker = new Map<string, typeof attempts>();
  for (const a of attempts) byWorker.set(a.worker_id, [...(byWorker.get(a.worker_id) ?? []), a]);
  for (const [workerId, list] of byWorker) {
    // Sweep: +1 at each offer, -1 at each end (ends first at equal times: a slot freed and refilled in one turn).
    const points = list.flatMap((a) => [{ t: a.offered_at, d: 1, a }, { t: a.ended_at, d: -1, a }]).sort((x, y) => x.t - y.t || x.d - y.d);
    let held = 0;
    for (const p of points) {
      held += p.d;
      if (p.d > 0 && held > (capacity.get(workerId) ?? 1)) {
        report.overSlots++;
        report.problems.push(`worker ${workerId} held ${held} claims at once when job ${p.a.job_id} attempt ${p.a.attempt} was offered`);
      }
    }
  }
}

async function resultMatches(read: (key: string) => Promise<Uint8Array | undefined>, row: JobRowForOracle): Promise<boolean> {
  const task = JSON.parse(row.task) as import('@studio-worker/protocol').Task;
  if (row.result_type === 'json') {
    const json = JSON.parse(row.result_json ?? 'null');
    if (task.kind === 'llm') return JSON.stringify(json) === JSON.stringify(syntheticChatCompletion(task.messages));
    if (task.kind === 'audio_stt') return JSON.stringify(json) === JSON.stringify(syntheticTranscript(task.inputUrl, task.language));
    return false;
  }
  const bytes = row.result_file ? await read(row.result_file) : undefined;
  if (!bytes) return false;
  if (task.kind === 'image') {
    const expected = await renderSyntheticImage(task.prompt, task.width ?? 512, task.height ?? 512, task.ext);
    return Buffer.compare(Buffer.from(bytes), Buffer.from(expected.bytes)) === 0;
  }
  if (task.kind === 'audio_tts') return Buffer.compare(Buffer.from(bytes), Buffer.from(renderSyntheticWav(task.text))) === 0;
  return false;
}
