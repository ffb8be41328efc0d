// `npm run fuzz -- [--seconds 60] [--seed N] [--per-round 300] [--rss-margin-mb 128] [--json]`: the
// HTTP fuzzer against a real studio and a real worker's local API at once, for as long as asked.
// Prints the figures; exits 1 on any broken invariant (a crash, a silent /health, fds or RSS not
// back at baseline, a `.part` file left behind, live heap grown between a snapshot after the
// warm-up and one at the end).
import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runHttpFuzz, type FuzzReport } from '../test/fuzz/http-fuzzer.ts';
import { startFuzzEnvironment } from '../test/fuzz/http-targets.ts';
import { settle } from '../test/helpers/raw-http.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    'per-round': { type: 'string', default: '300' },
    'rss-margin-mb': { type: 'string', default: '128' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const perRound = Number(values['per-round']);
if (!(seconds > 0) || !Number.isInteger(perRound) || perRound < 1) {
  process.stderr.write('--seconds must be a positive number and --per-round a whole number ≥ 1\n');
  process.exit(2);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const log = values.json ? undefined : (line: string) => process.stderr.write(`${line}\n`);
log?.(`HTTP fuzz for ${seconds} s, seed ${seed}`);

const snapshots = mkdtempSync(join(tmpdir(), 'http-fuzz-heap-'));
const env = await startFuzzEnvironment({ heapSnapshotDir: snapshots });
const rssMarginMiB = Number(values['rss-margin-mb']);

/** A heap snapshot of `pid` (live objects after a full GC); answers its size in MiB. */
async function heapSnapshotMiB(pid: number): Promise<number> {
  const mine = () => readdirSync(snapshots).filter((f) => f.includes(`.${pid}.`) && f.endsWith('.heapsnapshot'));
  const before = mine().length;
  process.kill(pid, 'SIGUSR2');
  await settle(() => mine().length > before, 60_000);
  const file = join(snapshots, mine().sort().at(-1) as string);
  // Complete once its JSON is closed (it is written in pieces, with pauses).
  await settle(() => {
    const size = statSync(file).size;
    if (size < 2) return false;
    const tail = Buffer.alloc(2);
    const fd = openSync(file, 'r');
    readSync(fd, tail, 0, 2, size - 2);
    closeSync(fd);
    return tail.toString() === ']}';
  }, 120_000);
  return statSync(file).size / (1024 * 1024);
}
const heap: Record<string, { afterWarmupMiB: number; endMiB: number }> = {};

// Ctrl-C: the studio and worker it started go too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void env.stop().finally(() => process.exit(130)));
}
const reports: FuzzReport[] = [];
try {
  // Both targets at once, each for the whole time.
  reports.push(...(await Promise.all(
    [env.studioTarget, env.workerTarget].map(async (target, i) => {
      const report = await runHttpFuzz(target, {
        seed: seed + i,
        perRound,
        seconds,
        rssMarginMiB,
        log,
        afterWarmup: async () => {
          heap[target.name] = { afterWarmupMiB: await heapSnapshotMiB(target.pid), endMiB: 0 };
        },
      });
      const entry = heap[target.name];
      if (entry && report.failures.length === 0) {
        entry.endMiB = await heapSnapshotMiB(target.pid);
        // Live objects back where they were (+10 %): the round-by-round RSS is the allocator's.
        if (entry.endMiB > entry.afterWarmupMiB * 1.1 + 2) report.failures.push(`${target.name} live heap grew from ${entry.afterWarmupMiB.toFixed(1)} to ${entry.endMiB.toFixed(1)} MiB of snapshot`);
      }
      return report;
    }),
  )));
} finally {
  await env.stop();
  rmSync(snapshots, { recursive: true, force: true });
}

if (values.json) process.stdout.write(`${JSON.stringify({ reports, heap })}\n`);
else {
  for (const r of reports) {
    const { failures, statuses, categories, ...figures } = r;
    const h = heap[r.target];
    const heapFigures = h ? { heapSnapshotAfterWarmupMiB: h.afterWarmupMiB.toFixed(1), heapSnapshotEndMiB: h.endMiB.toFixed(1) } : {};
    process.stdout.write(`\n${r.target}\n${Object.entries({ ...figures, ...heapFigures }).map(([k, v]) => `  ${k.padEnd(26)} ${v}`).join('\n')}\n`);
    process.stdout.write(`  statuses                   ${JSON.stringify(statuses)}\n  categories                 ${JSON.stringify(categories)}\n`);
    for (const f of failures) process.stdout.write(`  ! ${f}\n`);
  }
}
process.exit(reports.every((r) => r.failures.length === 0) ? 0 : 1);
