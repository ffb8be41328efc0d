// The HTTP fuzzer at a small size (a few seconds): hostile raw requests at every route of a real
// studio and of a real worker's local API; after each round both are alive, answer /health, and
// hold no more fds, memory or `.part` files than before. `npm run fuzz -- --seconds 600` runs it long.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runHttpFuzz } from './http-fuzzer.ts';
import { startFuzzEnvironment, type FuzzEnvironment } from './http-targets.ts';

let env: FuzzEnvironment;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

before(async () => {
  env = await startFuzzEnvironment();
});

after(async () => {
  await env?.stop();
});

describe('HTTP fuzzing', () => {
  for (const which of ['studio', 'worker'] as const) {
    it(`the ${which} survives hostile requests at every route with its resources back at baseline`, { timeout: 120_000 }, async () => {
      const target = which === 'studio' ? env.studioTarget : env.workerTarget;
      const report = await runHttpFuzz(target, { seed, perRound: 80, rounds: 2 });
      const context = `seed ${seed} (replay with FUZZ_SEED=${seed}): ${JSON.stringify(report)}`;
      assert.deepEqual(report.failures, [], context);
      assert.equal(report.rounds, 2, context);
      assert.ok(report.requests >= 240, context);
      // Every category of abuse was tried.
      for (const category of ['malformed-request-line', 'absolute-form', 'upgrade', 'hostile-headers', 'body-cut-short', 'pipelined', 'junk-request']) {
        assert.ok((report.categories[category] ?? 0) > 0, `${category} never sent: ${context}`);
      }
      // No answer was a 500: bad input gets a 4xx that says what to fix.
      assert.equal(report.statuses['500'] ?? 0, 0, context);
    });
  }
});
