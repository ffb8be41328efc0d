import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWorkerFrame, WorkerFrame } from '../src/index.ts';

/** Without the keys whose value is undefined (JSON drops them; the dispatcher reads them as absent). */
const defined = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

describe('accept and completeJson are read without zod, with the same outcome as zod', () => {
  const cases: unknown[] = [
    { type: 'accept', jobId: 'job-1' },
    { type: 'accept', jobId: 'job-1', attempt: 2 },
    { type: 'accept', jobId: 'job-1', attempt: null },
    { type: 'accept', jobId: 'job-1', attempt: 2, extra: 'dropped' },
    { type: 'accept', jobId: '' },
    { type: 'accept', jobId: 'x'.repeat(201) },
    { type: 'accept', jobId: 7 },
    { type: 'accept', jobId: 'job-1', attempt: 0 },
    { type: 'accept', jobId: 'job-1', attempt: 1.5 },
    { type: 'accept', jobId: 'job-1', attempt: '2' },
    { type: 'accept' },
    { type: 'completeJson', jobId: 'job-1', result: { ok: true }, prompt: 'p', attempt: 3 },
    { type: 'completeJson', jobId: 'job-1', result: null },
    { type: 'completeJson', jobId: 'job-1', result: [1, 2], prompt: null, attempt: null },
    { type: 'completeJson', jobId: 'job-1' },
    { type: 'completeJson', jobId: 'job-1', result: 1, prompt: 5 },
    { type: 'completeJson', jobId: 'job-1', result: 1, attempt: -1 },
  ];
  for (const value of cases) {
    it(JSON.stringify(value).slice(0, 90), () => {
      const ours = parseWorkerFrame(JSON.stringify(value));
      const zod = WorkerFrame.safeParse(value);
      assert.equal(ours.ok, zod.success);
      if (ours.ok && zod.success) assert.deepEqual(defined(ours.frame), defined(zod.data));
    });
  }
});
