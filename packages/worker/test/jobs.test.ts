import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { JobOfferClaim, type TaskKind, type WorkerFrame } from '@studio-worker/protocol';
import { JobGate } from '../src/platform/job-gate.ts';
import { EngineFailure, type Engine, type EngineContext, type EngineJob, type EngineResult } from '../src/engines/engine.ts';
import { EngineRouter } from '../src/engines/router.ts';
import { ResultDelivery } from '../src/runner/delivery.ts';
import { JobRunner, type JobRunnerOptions } from '../src/runner/jobs.ts';
import { LinkHolder, type StudioLink } from '../src/session/link.ts';
import { Outbox } from '../src/runner/outbox.ts';
import { Changes } from './helpers/wait.ts';

type Run = (job: EngineJob, ctx: EngineContext) => Promise<EngineResult>;

function fakeEngine(name: string, kinds: TaskKind[], run: Run): Engine {
  return { name, kinds, probe: async () => ({ available: true }), advertisedModels: () => ({}), run };
}

function claim(jobId: string, options: { engine?: string; kind?: 'llm' | 'image'; attempt?: number } = {}): JobOfferClaim {
  const task = options.kind === 'image' ? { kind: 'image', prompt: `draw ${jobId}` } : { kind: 'llm', messages: [{ role: 'user', content: `say ${jobId}` }] };
  return JobOfferClaim.parse({ jobId, model: 'm', task, modelSource: { engine: options.engine ?? 'fake' }, attempt: options.attempt ?? 1 });
}

interface FakeLink extends StudioLink {
  frames: WorkerFrame[];
}

describe('job runner (in-process, fake engines)', () => {
  let dir: string;
  let changes: Changes;
  let links: LinkHolder;
  let link: FakeLink;
  let outbox: Outbox;
  let gate: JobGate;
  let holdBack: string | null;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-jobs-'));
    changes = new Changes();
    links = new LinkHolder();
    outbox = await Outbox.open(join(dir, 'outbox'), silentLogger);
    outbox.onChange(() => changes.signal());
    gate = new JobGate();
    holdBack = null;
    const frames: WorkerFrame[] = [];
    const controller = new AbortController();
    link = {
      id: 1,
      features: new Set(['progress']),
      closed: controller.signal,
      frames,
      send(frame) {
        frames.push(frame);
        changes.signal();
        return true;
      },
      has(feature) {
        return this.features.has(feature);
      },
    };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** `prefetch`: the config switch, fixed or read live per offer. */
  async function runner(engines: Engine[], options: { abortSettleMs?: number; prefetch?: boolean | (() => boolean); scratchRoot?: string } & Pick<JobRunnerOptions, 'onJobEvent' | 'onEngineOutcome' | 'onChange'> = {}) {
    const router = new EngineRouter(engines, silentLogger);
    await router.refresh();
    const delivery = new ResultDelivery({ outbox, links, credentials: () => null, timings: () => ({ uploadRetryBaseMs: 10, uploadGiveUpMs: 1000 }), log: silentLogger });
    links.up(link);
    const { prefetch = false, ...rest } = options;
    return new JobRunner({
      gate,
      router,
      outbox,
      delivery,
      links,
      log: silentLogger,
      holdBack: () => holdBack,
      onChange: () => changes.signal(),
      prefetch: typeof prefetch === 'function' ? prefetch : () => prefetch,
      scratchRoot: dir,
      ...rest,
    });
  }

  /** An engine whose runs end when the test says so; `runs` lists them in the order they started. */
  function heldEngine() {
    const runs: Array<{ jobId: string; finish: (result: EngineResult) => void; fail: (error: Error) => void; storedBefore: string[] }> = [];
    const engine = fakeEngine('fake', ['llm'], (job) => {
      return new Promise<EngineResult>((resolve, reject) => {
        // What was already in the outbox when this engine run began.
        runs.push({ jobId: job.jobId, finish: resolve, fail: reject, storedBefore: outbox.entries().map((entry) => entry.jobId) });
        changes.signal();
      });
    });
    const started = (index: number) => changes.waitFor(() => runs[index], `engine run #${index + 1}`, 5000);
    return { engine, runs, started };
  }

  const withPrefetchFeature = () => (link.features as Set<string>).add('prefetch');

  const frameFor = (type: string, jobId: string) =>
    changes.waitFor(() => link.frames.find((f) => f.type === type && 'jobId' in f && f.jobId === jobId), `${type} for ${jobId}`, 5000);

  it('routes strictly on modelSource.engine and kind: never another engine', async () => {
    let ran = 0;
    const jobs = await runner([fakeEngine('fake', ['llm'], async () => (ran++, { type: 'json', json: 1 }))]);
    jobs.handleOffer(claim('other-engine', { engine: 'comfyui' }), link);
    jobs.handleOffer(claim('wrong-kind', { kind: 'image' }), link);
    const a = await frameFor('reject', 'other-engine');
    const b = await frameFor('reject', 'wrong-kind');
    assert.equal(a.type === 'reject' && a.code, 'unsupported');
    assert.equal(b.type === 'reject' && b.code, 'unsupported');
    assert.equal(ran, 0);
    assert.equal(gate.busy, false, 'a refused offer gives the gate back');
  });

  it('reports engine failures with their code and retryability, echoing the attempt', async () => {
    const jobs = await runner([
      fakeEngine('fake', ['llm', 'image'], async (job) => {
        if (job.task.kind === 'image') throw new EngineFailure('bad_input', 'the mask is not an image', { retryable: false });
        throw new Error('segfault');
      }),
    ]);
    jobs.handleOffer(claim('typed', { kind: 'image', attempt: 4 }), link);
    const typed = await frameFor('fail', 'typed');
    assert.deepEqual(typed, { type: 'fail', jobId: 'typed', attempt: 4, code: 'bad_input', retryable: false, error: 'the mask is not an image' });
    jobs.handleOffer(claim('plain', { attempt: 2 }), link);
    const plain = await frameFor('fail', 'plain');
    assert.equal(plain.type === 'fail' && plain.code, 'engine_error');
    assert.equal(plain.type === 'fail' && plain.retryable, true);
  });

  it('an offer without an attempt (the original studio) runs as attempt 1 inside, and no frame about it carries one', async () => {
    const seen: { engine?: number; events: Array<[string, number]>; outcome?: number } = { events: [] };
    const jobs = await runner([fakeEngine('fake', ['llm'], async (job) => ((seen.engine = job.attempt), { type: 'json', json: 'ok' }))], {
      onJobEvent: (event) => seen.events.push([event.type, event.attempt]),
      onEngineOutcome: (job) => (seen.outcome = job.attempt),
    });
    const offer = JobOfferClaim.parse({ jobId: 'original', model: 'm', task: { kind: 'llm', messages: [{ role: 'user', content: 'hi' }] }, modelSource: { engine: 'fake' } });
    assert.equal(offer.attempt, undefined);
    jobs.handleOffer(offer, link);
    const result = await frameFor('completeJson', 'original');
    assert.equal(seen.engine, 1);
    assert.equal(seen.outcome, 1);
    assert.deepEqual(seen.events.filter(([type]) => type !== 'progress'), [['accepted', 1], ['ended', 1]]);
    const frames = link.frames.filter((f) => 'jobId' in f && f.jobId === 'original');
    assert.deepEqual(frames.map((f) => f.type).filter((t) => t !== 'progress'), ['accept', 'completeJson']);
    assert.ok(frames.every((f) => !('attempt' in f) || f.attempt === undefined), 'no attempt the studio never sent');
    assert.equal(result.type === 'completeJson' && result.prompt, 'hi', 'the prompt goes back for the original studio');
  });

  it('rejects paused and busy, and gives each job a scratch dir that is removed afterwards', async () => {
    let workDir = '';
    let release!: () => void;
    const jobs = await runner([
      fakeEngine('fake', ['llm'], async (_job, ctx) => {
        await access(ctx.workDir);
        await new Promise<void>((resolve) => {
          release = resolve;
          workDir = ctx.workDir;
          changes.signal();
        });
        return { type: 'json', json: { ok: true } };
      }),
    ]);
    holdBack = 'worker paused by operator';
    jobs.handleOffer(claim('held'), link);
    const paused = await frameFor('reject', 'held');
    assert.equal(paused.type === 'reject' && paused.code, 'paused');
    holdBack = null;
    jobs.handleOffer(claim('first'), link);
    await frameFor('accept', 'first');
    jobs.handleOffer(claim('second'), link);
    const busy = await frameFor('reject', 'second');
    assert.equal(busy.type === 'reject' && busy.code, 'busy');
    await changes.waitFor(() => (workDir ? true : undefined), 'the engine to start');
    assert.deepEqual(jobs.inFlight(), [{ jobId: 'first', attempt: 1, state: 'running' }]);
    release();
    await frameFor('completeJson', 'first');
    await changes.waitFor(() => (gate.busy ? undefined : true), 'the gate to be released');
    await assert.rejects(access(workDir), 'the scratch dir is gone');
    assert.deepEqual(jobs.inFlight(), []);
  });

  it('a result returned after a cancel is never sent: fail{cancelled} instead', async () => {
    let started = false;
    const jobs = await runner([
      fakeEngine('fake', ['image'], async (_job, ctx) => {
        const aborted = new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        started = true;
        changes.signal();
        await aborted;
        return { type: 'file', bytes: new Uint8Array([1]), ext: 'png' };
      }),
    ]);
    jobs.handleOffer(claim('stubborn', { kind: 'image', attempt: 3 }), link);
    await changes.waitFor(() => (started ? true : undefined), 'the engine to start');
    await jobs.cancel('stubborn', 3);
    const fail = await frameFor('fail', 'stubborn');
    assert.deepEqual(fail, { type: 'fail', jobId: 'stubborn', attempt: 3, code: 'cancelled', retryable: false, error: 'cancelled by studio' });
    assert.deepEqual(outbox.entries().map((e) => e.kind), ['fail']);
  });

  it('a job cancelled before its engine started never runs', async () => {
    let ran = 0;
    const jobs = await runner([fakeEngine('fake', ['llm'], async () => (ran++, { type: 'json', json: 1 }))]);
    jobs.handleOffer(claim('early-cancel'), link);
    await jobs.cancel('early-cancel', 1);
    const fail = await frameFor('fail', 'early-cancel');
    assert.equal(fail.type === 'fail' && fail.code, 'cancelled');
    assert.equal(ran, 0);
    assert.equal(link.frames.filter((f) => f.type === 'completeJson').length, 0);
  });

  it('a cancel for a finished job whose result waits in the outbox replaces it with fail{cancelled}', async () => {
    const jobs = await runner([fakeEngine('fake', ['image'], async () => ({ type: 'file', bytes: new Uint8Array([1, 2]), ext: 'png' }))]);
    jobs.handleOffer(claim('done-then-cancelled', { kind: 'image' }), link);
    await changes.waitFor(() => (outbox.find('done-then-cancelled')[0]?.kind === 'file' ? true : undefined), 'the result in the outbox');
    await jobs.cancel('done-then-cancelled', 1, 'operator changed their mind');
    const fail = await frameFor('fail', 'done-then-cancelled');
    assert.equal(fail.type === 'fail' && fail.code, 'cancelled');
    assert.match(fail.type === 'fail' ? fail.error : '', /operator changed their mind/);
    assert.deepEqual(outbox.entries().map((e) => e.kind), ['fail']);
  });

  it('drain hands back a job that outlives the grace period, even when its engine ignores the abort', async () => {
    const jobs = await runner([fakeEngine('fake', ['llm'], () => new Promise<EngineResult>(() => {}))], { abortSettleMs: 50 });
    jobs.handleOffer(claim('forever', { attempt: 2 }), link);
    await frameFor('accept', 'forever');
    await jobs.drain(30);
    const fail = await frameFor('fail', 'forever');
    assert.equal(fail.type === 'fail' && fail.code, 'handed_back');
    assert.equal(fail.type === 'fail' && fail.retryable, true);
    assert.equal(fail.type === 'fail' && fail.attempt, 2);
  });

  it('progress goes out only to a studio with the progress feature, clamped to valid values', async () => {
    const waiting: Array<() => void> = [];
    const jobs = await runner([
      fakeEngine('fake', ['llm'], async (_job, ctx) => {
        ctx.progress({ phase: 'generating', step: 1.7, total: 10, fraction: 1.5, message: 'x'.repeat(600) });
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          changes.signal();
        });
        return { type: 'json', json: null };
      }),
    ]);
    jobs.handleOffer(claim('prog'), link);
    const progress = await frameFor('progress', 'prog');
    assert.equal(progress.type === 'progress' && progress.step, 1);
    assert.equal(progress.type === 'progress' && progress.fraction, 1);
    assert.equal(progress.type === 'progress' && progress.message?.length, 500);
    (await changes.waitFor(() => waiting.shift(), 'the first engine run'))();
    await frameFor('completeJson', 'prog');

    (link.features as Set<string>).delete('progress');
    jobs.handleOffer(claim('quiet'), link);
    await frameFor('accept', 'quiet');
    (await changes.waitFor(() => waiting.shift(), 'the second engine run'))();
    await frameFor('completeJson', 'quiet');
    assert.equal(link.frames.filter((f) => f.type === 'progress' && f.jobId === 'quiet').length, 0);
  });

  it('prefetch: one extra offer waits for the engine and starts the moment the first engine returns; a third is busy', async () => {
    const { engine, runs, started } = heldEngine();
    const jobs = await runner([engine], { prefetch: true });
    withPrefetchFeature();
    jobs.handleOffer(claim('pf-a', { attempt: 1 }), link);
    await frameFor('accept', 'pf-a');
    await started(0);
    jobs.handleOffer(claim('pf-b', { attempt: 2 }), link);
    await frameFor('accept', 'pf-b');
    jobs.handleOffer(claim('pf-c'), link);
    const busy = await frameFor('reject', 'pf-c');
    assert.equal(busy.type === 'reject' && busy.code, 'busy');
    assert.match(busy.type === 'reject' ? busy.reason : '', /one waiting/);
    assert.deepEqual(jobs.inFlight(), [
      { jobId: 'pf-a', attempt: 1, state: 'running' },
      { jobId: 'pf-b', attempt: 2, state: 'running' },
    ]);
    assert.deepEqual(jobs.currentJobIds(), ['pf-a', 'pf-b']);
    assert.deepEqual(jobs.waitingJobIds(), ['pf-b']);
    const queued = await frameFor('progress', 'pf-b');
    assert.equal(queued.type === 'progress' && queued.phase, 'queued');

    // Paused now: new offers are refused, the accepted one still runs.
    holdBack = 'worker paused by operator';
    jobs.handleOffer(claim('pf-d'), link);
    const paused = await frameFor('reject', 'pf-d');
    assert.equal(paused.type === 'reject' && paused.code, 'paused');
    assert.equal(runs.length, 1, 'the prefetched job waits while the first engine runs');

    runs[0]!.finish({ type: 'json', json: 'a' });
    const second = await started(1);
    assert.equal(second.jobId, 'pf-b');
    assert.deepEqual(second.storedBefore, [], "the second engine started before the first job's result was even stored");
    assert.deepEqual(jobs.waitingJobIds(), []);
    await frameFor('completeJson', 'pf-a');
    second.finish({ type: 'json', json: 'b' });
    await frameFor('completeJson', 'pf-b');
    await changes.waitFor(() => (jobs.inFlight().length === 0 ? true : undefined), 'both jobs to end');
    assert.equal(gate.busy, false);
    assert.equal(runs.length, 2, 'pf-c and pf-d never ran');
  });

  it("a prefetched job's engine starts before its bookkeeping: the started event and the state change come after", async () => {
    // On a backlog the engine idles from one job's end to the next one's start: nothing but the
    // start itself may stand in between (bench:busy measured ~0.3 ms of it, mostly a log line and
    // state.json's snapshot).
    const order: string[] = [];
    const { engine, runs, started } = heldEngine();
    const run = engine.run.bind(engine);
    engine.run = (job, ctx) => (order.push(`run ${job.jobId}`), run(job, ctx));
    const jobs = await runner([engine], {
      prefetch: true,
      onJobEvent: (event) => order.push(`${event.type} ${event.jobId}`),
      onChange: () => (order.push('change'), changes.signal()),
    });
    withPrefetchFeature();
    jobs.handleOffer(claim('first'), link);
    await started(0);
    jobs.handleOffer(claim('second'), link);
    await frameFor('accept', 'second');
    const from = order.length;
    runs[0]!.finish({ type: 'json', json: 1 });
    await started(1);
    await changes.waitFor(() => (order.includes('started second') ? true : undefined), 'the started event of the second job');
    const after = order.slice(from).filter((entry) => ['run second', 'started second', 'change'].includes(entry));
    assert.deepEqual(after, ['run second', 'started second', 'change'], 'after the first engine returned');
    runs[1]!.finish({ type: 'json', json: 2 });
    await frameFor('completeJson', 'second');
  });

  it('a prefetched job whose engine throws at once (not a rejected promise) still gets its started event before its fail', async () => {
    const order: string[] = [];
    const { engine, runs, started } = heldEngine();
    const run = engine.run.bind(engine);
    engine.run = (job, ctx) => {
      if (job.jobId === 'second') throw new Error('the engine refused synchronously');
      return run(job, ctx);
    };
    const jobs = await runner([engine], { prefetch: true, onJobEvent: (event) => (order.push(`${event.type} ${event.jobId}`), changes.signal()) });
    withPrefetchFeature();
    jobs.handleOffer(claim('first'), link);
    await started(0);
    jobs.handleOffer(claim('second'), link);
    await frameFor('accept', 'second');
    runs[0]!.finish({ type: 'json', json: 1 });
    const failed = await frameFor('fail', 'second');
    assert.equal(failed.type === 'fail' && failed.error, 'the engine refused synchronously');
    await changes.waitFor(() => (order.includes('ended second') ? true : undefined), 'the ended event of the second job');
    assert.deepEqual(
      order.filter((entry) => entry.endsWith(' second') && !entry.startsWith('progress')),
      ['accepted second', 'started second', 'ended second'],
    );
  });

  it('prefetch needs both the config switch and a studio that announced the feature', async () => {
    const { engine, runs, started } = heldEngine();
    let prefetch = false;
    const jobs = await runner([engine], { prefetch: () => prefetch });
    withPrefetchFeature();
    jobs.handleOffer(claim('first'), link);
    await started(0);
    jobs.handleOffer(claim('switch-off'), link);
    const off = await frameFor('reject', 'switch-off');
    assert.equal(off.type === 'reject' && off.code, 'busy');
    prefetch = true;
    (link.features as Set<string>).delete('prefetch');
    jobs.handleOffer(claim('studio-without-it'), link);
    const refused = await frameFor('reject', 'studio-without-it');
    assert.equal(refused.type === 'reject' && refused.code, 'busy');
    withPrefetchFeature();
    jobs.handleOffer(claim('both'), link);
    await frameFor('accept', 'both');
    // The same job offered again while held is refused, never run twice.
    jobs.handleOffer(claim('both', { attempt: 2 }), link);
    const again = await frameFor('reject', 'both');
    assert.equal(again.type === 'reject' && again.code, 'busy');
    runs[0]!.finish({ type: 'json', json: 1 });
    (await started(1)).finish({ type: 'json', json: 2 });
    await frameFor('completeJson', 'both');
    assert.deepEqual(runs.map((run) => run.jobId), ['first', 'both']);
  });

  it('a prefetched job waits behind local work that queued for the gate first', async () => {
    const { engine, runs, started } = heldEngine();
    const jobs = await runner([engine], { prefetch: true });
    withPrefetchFeature();
    jobs.handleOffer(claim('studio-1'), link);
    await started(0);
    let localRelease: (() => void) | undefined;
    const local = gate.acquire().then((release) => {
      localRelease = release;
      changes.signal();
    });
    jobs.handleOffer(claim('studio-2'), link);
    await frameFor('accept', 'studio-2');
    runs[0]!.finish({ type: 'json', json: 1 });
    await local;
    await frameFor('completeJson', 'studio-1');
    assert.equal(runs.length, 1, 'the local job has the engine; the prefetched one still waits');
    assert.deepEqual(jobs.waitingJobIds(), ['studio-2']);
    localRelease!();
    (await started(1)).finish({ type: 'json', json: 2 });
    await frameFor('completeJson', 'studio-2');
  });

  it('a cancelled prefetched job never runs; on drain a waiting job goes back at once while the running one gets its grace', async () => {
    const { engine, runs, started } = heldEngine();
    const jobs = await runner([engine], { prefetch: true });
    withPrefetchFeature();
    jobs.handleOffer(claim('long', { attempt: 1 }), link);
    await started(0);
    jobs.handleOffer(claim('dropped', { attempt: 2 }), link);
    await frameFor('accept', 'dropped');
    await jobs.cancel('dropped', 2, 'operator');
    const cancelled = await frameFor('fail', 'dropped');
    assert.equal(cancelled.type === 'fail' && cancelled.code, 'cancelled');
    assert.equal(cancelled.type === 'fail' && cancelled.retryable, false);
    await changes.waitFor(() => (jobs.inFlight().length === 1 ? true : undefined), 'the cancelled job to leave');

    // Its slot is free again.
    jobs.handleOffer(claim('queued', { attempt: 3 }), link);
    await frameFor('accept', 'queued');
    const drained = jobs.drain(10_000);
    const handedBack = await frameFor('fail', 'queued');
    assert.equal(handedBack.type === 'fail' && handedBack.code, 'handed_back');
    assert.equal(handedBack.type === 'fail' && handedBack.retryable, true);
    assert.equal(handedBack.type === 'fail' && handedBack.attempt, 3);
    assert.equal(link.frames.filter((f) => f.type === 'completeJson' || f.type === 'fail').length, 2, 'the running job is still within its grace period');
    runs[0]!.finish({ type: 'json', json: 'done in time' });
    await drained;
    await frameFor('completeJson', 'long');
    assert.deepEqual(runs.map((run) => run.jobId), ['long'], 'neither prefetched job ever reached the engine');
    assert.equal(gate.busy, false);
  });

  it('a prefetched job that fails before reaching the engine passes its turn on; the gate is not lost', async () => {
    const { engine, runs, started } = heldEngine();
    const scratch = join(dir, 'scratch');
    await mkdir(scratch);
    const jobs = await runner([engine], { prefetch: true, scratchRoot: scratch });
    withPrefetchFeature();
    jobs.handleOffer(claim('first'), link);
    await started(0);
    // Scratch dirs can no longer be made: the prefetched job fails without ever running.
    await rm(scratch, { recursive: true, force: true });
    await writeFile(scratch, 'not a directory');
    jobs.handleOffer(claim('doomed'), link);
    const failed = await frameFor('fail', 'doomed');
    assert.equal(failed.type === 'fail' && failed.code, 'engine_error');
    runs[0]!.finish({ type: 'json', json: 1 });
    await frameFor('completeJson', 'first');
    await changes.waitFor(() => (gate.busy ? undefined : true), 'the gate to be free');
    const release = gate.tryAcquire();
    assert.ok(release, 'nobody holds the gate');
    release();
    assert.deepEqual(runs.map((run) => run.jobId), ['first']);
  });

  it('engineBusy counts time inside engine.run against wall time since the first engine started', async () => {
    const { engine, runs, started } = heldEngine();
    const jobs = await runner([engine]);
    assert.deepEqual(jobs.engineBusy(), { busyMs: 0, sinceMs: 0 });
    jobs.handleOffer(claim('timed'), link);
    await started(0);
    await access(dir);
    const during = jobs.engineBusy();
    assert.ok(during.busyMs > 0 && during.busyMs <= during.sinceMs, `busy while running (${JSON.stringify(during)})`);
    runs[0]!.finish({ type: 'json', json: 1 });
    await frameFor('completeJson', 'timed');
    const after = jobs.engineBusy();
    await access(dir);
    const idle = jobs.engineBusy();
    assert.equal(idle.busyMs, after.busyMs, 'idle time does not count as busy');
    assert.ok(idle.sinceMs > after.sinceMs, 'wall time keeps running');
    assert.ok(after.busyMs >= during.busyMs);
  });

  it('a JSON result too big for a frame is kept as a .json file for upload', async () => {
    const big = { text: 'x'.repeat(5 * 1024 * 1024) };
    const jobs = await runner([fakeEngine('fake', ['llm'], async () => ({ type: 'json', json: big }))]);
    jobs.handleOffer(claim('huge'), link);
    const entry = await changes.waitFor(() => outbox.find('huge')[0], 'the outbox entry');
    assert.equal(entry.kind, 'file');
    assert.equal(entry.kind === 'file' && entry.ext, 'json');
    assert.equal(link.frames.filter((f) => f.type === 'completeJson').length, 0);
  });
});
