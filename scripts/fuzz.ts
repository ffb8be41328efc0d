// `npm run fuzz -- [--seconds 60] [--seed N] [--per-round 300] [--json]`: the HTTP fuzzer against a
// real studio and a real worker's local API for as long as asked (half the time each, alternating
// rounds). Prints the figures; exits 1 on any broken invariant (a crash, a silent /health, fds or
// RSS not back at baseline, a `.part` file left behind).
import { parseArgs } from 'node:util';
import { runHttpFuzz, type FuzzReport } from '../test/fuzz/http-fuzzer.ts';
import { startFuzzEnvironment } from '../test/fuzz/http-targets.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    'per-round': { type: 'string', default: '300' },
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

const env = await startFuzzEnvironment();
const reports: FuzzReport[] = [];
try {
  // Both targets at once, each for the whole time.
  reports.push(...(await Promise.all([
    runHttpFuzz(env.studioTarget, { seed, perRound, seconds, log }),
    runHttpFuzz(env.workerTarget, { seed: seed + 1, perRound, seconds, log }),
  ])));
} finally {
  await env.stop();
}

if (values.json) process.stdout.write(`${JSON.stringify(reports)}\n`);
else {
  for (const r of reports) {
    const { failures, statuses, categories, ...figures } = r;
    process.stdout.write(`\n${r.target}\n${Object.entries(figures).map(([k, v]) => `  ${k.padEnd(16)} ${v}`).join('\n')}\n`);
    process.stdout.write(`  statuses         ${JSON.stringify(statuses)}\n  categories       ${JSON.stringify(categories)}\n`);
    for (const f of failures) process.stdout.write(`  ! ${f}\n`);
  }
}
process.exit(reports.every((r) => r.failures.length === 0) ? 0 : 1);
