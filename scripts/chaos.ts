// `npm run chaos -- [--jobs 10000] [--workers 4] [--seed N] [--host node|cloudflare] [--json] [--keep]`:
// the chaos run at any size, against either studio host. Prints the oracle's figures; exits 1 when
// anything was lost, doubled or wrong.
import { parseArgs } from 'node:util';
import { runChaos } from '../test/chaos/run-chaos.ts';
import { STUDIO_HOSTS, type StudioHost } from '../test/helpers/hosts.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2000' },
    workers: { type: 'string', default: '4' },
    seed: { type: 'string' },
    'timeout-s': { type: 'string' },
    'studio-restarts': { type: 'string', default: '2' },
    host: { type: 'string' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

const jobs = Number(values.jobs);
const workers = Number(values.workers);
if (!Number.isInteger(jobs) || jobs < 1 || !Number.isInteger(workers) || workers < 1) {
  process.stderr.write('--jobs and --workers must be whole numbers ≥ 1\n');
  process.exit(2);
}
if (values.host !== undefined && !(STUDIO_HOSTS as readonly string[]).includes(values.host)) {
  process.stderr.write(`--host must be one of ${STUDIO_HOSTS.join(', ')}\n`);
  process.exit(2);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const report = await runChaos({
  jobs,
  workers,
  seed,
  // Generous: the run ends as soon as every job is terminal.
  timeoutMs: Number(values['timeout-s'] ?? Math.max(120, jobs / 10)) * 1000,
  chaosEveryMs: 1000,
  studioRestarts: Number(values['studio-restarts']),
  // Unset: startStudioProcess's default (node, or STUDIO_E2E_HOST).
  host: values.host as StudioHost | undefined,
  keep: values.keep,
  log: values.json ? undefined : (line) => process.stderr.write(`${line}\n`),
});

const { problems, ...figures } = report;
if (values.json) {
  const { jobs: j, lost, doubled, terminal, maxAttempt, workerKills, studioRestarts, ...rest } = figures;
  process.stdout.write(`${JSON.stringify({ jobs: j, lost, doubled, terminal, maxAttempt, workerKills, studioRestarts, ...rest })}\n`);
} else {
  process.stdout.write(`\n${Object.entries(figures).map(([k, v]) => `  ${k.padEnd(16)} ${v}`).join('\n')}\n`);
  for (const p of problems.slice(0, 20)) process.stdout.write(`  ! ${p}\n`);
}
const ok = report.lost === 0 && report.doubled === 0 && report.wrongResults === 0 && report.overCap === 0 && report.overSlots === 0 && report.terminal === report.jobs;
process.exit(ok ? 0 : 1);
