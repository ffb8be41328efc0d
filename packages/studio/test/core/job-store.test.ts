import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobId } from '../../src/core/jobs.ts';
import { JobStore } from '../../src/core/job-store.ts';
import { ENDED_CONDITION } from '../../src/core/schema.ts';
import { jobView } from '../../src/core/views.ts';
import { capabilities, connectWorker, makeHarness, send, llmSubmission, type Harness } from './harness.ts';

const llm = (content: string) => llmSubmission(content, 4);

/** The text of every statement `fn` runs through the harness's SQL port methods named. */
function statementsRun(h: Harness, methods: ReadonlyArray<'run' | 'get' | 'all'>, fn: () => void): Set<string> {
  const seen = new Set<string>();
  const sql = h.sql as unknown as Record<string, (text: string, ...params: unknown[]) => unknown>;
  const originals = methods.map((name) => [name, sql[name] as (text: string, ...params: unknown[]) => unknown] as const);
  for (const [name, original] of originals) sql[name] = (text, ...params) => (seen.add(text), original.call(h.sql, text, ...params));
  try {
    fn();
  } finally {
    for (const [name, original] of originals) sql[name] = original;
  }
  return seen;
}

describe('job ids', () => {
  it('are job- and 16 hex digits, and sort in creation order (they append to the primary-key index)', () => {
    assert.match(jobId(1, 'abcdef'), /^job-[0-9a-f]{16}$/);
    const ids = [1, 2, 15, 16, 255, 4096, 1_000_000, 2 ** 40 - 1].map((seq) => jobId(seq, '000000'));
    assert.deepEqual([...ids].sort(), ids);
    const h = makeHarness();
    const created = h.core.jobs.createMany([llm('a'), llm('b'), llm('c')]);
    assert.ok(created.ok);
    const made = created.value.map((j) => j.id);
    assert.equal(new Set(made).size, 3);
    assert.deepEqual([...made].sort(), made);
  });
});

describe('the create answer is built without reading the rows back', () => {
  it('insertedRow is exactly what the database holds after insert', () => {
    const h = makeHarness();
    const created = h.core.jobs.createMany([llm('x'), { ...llm('y'), priority: 3, maxAttempts: 2, gameId: 'g', assetName: 'a' }]);
    assert.ok(created.ok);
    for (const view of created.value) {
      const row = h.core.stores.jobs.get(view.id);
      assert.ok(row);
      assert.equal(row.status, 'queued');
      const rebuilt = JobStore.insertedRow({
        id: row.id,
        seq: row.seq,
        model: row.model,
        kind: row.kind,
        engine: row.engine,
        task: row.task,
        modelSource: row.model_source,
        vramGbEstimate: row.vram_gb_estimate,
        gameId: row.game_id,
        assetName: row.asset_name,
        prompt: row.prompt,
        priority: row.priority,
        maxAttempts: row.max_attempts,
        now: row.created_at,
      });
      assert.deepEqual(rebuilt, { ...row });
      assert.deepEqual(view, jobView(row));
    }
  });

  it('a single job for an idle worker is stored already claimed: the row, the answer and the offer agree with a claim', () => {
    const h = makeHarness();
    const w = connectWorker(h, capabilities());
    const created = h.core.jobs.create(llm('solo'));
    assert.ok(created.ok);
    const row = h.core.stores.jobs.get(created.value.id);
    assert.ok(row);
    assert.equal(row.status, 'claimed');
    assert.equal(row.worker_id, w.workerId);
    assert.equal(row.last_worker_id, w.workerId);
    assert.equal(row.claimed_at, row.updated_at);
    assert.equal(row.lease_expires_at, (row.claimed_at as number) + 30_000);
    const read = h.core.jobs.get(created.value.id);
    assert.ok(read.ok);
    const { attempts: _attempts, ...withoutAttempts } = read.value;
    assert.deepEqual(created.value, withoutAttempts);
    assert.equal(h.channel.of(w.connId, 'offer')[0]?.claim.jobId, created.value.id);
    // It counts as held, and its lease is swept like any claim.
    assert.deepEqual(h.core.stores.jobs.heldBy(w.workerId).map((j) => j.id), [created.value.id]);
    assert.equal(h.core.stores.jobs.list({ status: 'queued', limit: 10 }).length, 0, 'never in the queue index');
  });

  it('a batch answer shows the jobs offered at once as claimed and the rest as queued, equal to a read', () => {
    const h = makeHarness();
    connectWorker(h, capabilities());
    const created = h.core.jobs.createMany([llm('1'), llm('2'), llm('3')]);
    assert.ok(created.ok);
    assert.deepEqual(created.value.map((j) => j.status), ['claimed', 'queued', 'queued']);
    for (const view of created.value) {
      const read = h.core.jobs.get(view.id);
      assert.ok(read.ok);
      const { attempts: _attempts, ...withoutAttempts } = read.value;
      assert.deepEqual(view, withoutAttempts);
    }
  });
});

describe('counts and lists stay off the whole table', () => {
  it('counts per status match a full GROUP BY through every transition (done, failed, cancelled, retried)', () => {
    const h = makeHarness({ cooldownAfterFailures: 99 });
    const w = connectWorker(h);
    const created = h.core.jobs.createMany(['a', 'b', 'c', 'd', 'e', 'f'].map(llm));
    assert.ok(created.ok);
    const [a, b, c, d] = created.value.map((j) => j.id) as [string, string, string, string];
    const truth = () => {
      const out: Record<string, number> = {};
      for (const row of h.sql.all<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status')) out[row.status] = row.n;
      return out;
    };
    const check = (when: string) => assert.deepEqual(h.core.jobs.counts(), truth(), when);
    check('one claimed, five queued');
    send(h, w.connId, { type: 'accept', jobId: a, attempt: 1 });
    check('running');
    send(h, w.connId, { type: 'completeJson', jobId: a, attempt: 1, result: {} });
    check('done');
    send(h, w.connId, { type: 'fail', jobId: b, attempt: 1, error: 'bad input', retryable: false, code: 'bad_input' });
    check('failed');
    assert.ok(h.core.jobs.cancel(d).ok);
    check('cancelled while queued');
    assert.ok(h.core.jobs.retry(b).ok);
    check('failed job retried');
    assert.ok(h.core.jobs.cancel(c).ok);
    check('cancelled while claimed');
    assert.equal(h.core.jobs.counts().done, 1);
  });

  it('each status filter lists that status newest first, from an index', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const created = h.core.jobs.createMany(['a', 'b', 'c', 'd'].map(llm));
    assert.ok(created.ok);
    const [a, b, , d] = created.value.map((j) => j.id) as [string, string, string, string];
    send(h, w.connId, { type: 'completeJson', jobId: a, attempt: 1, result: {} }); // b is offered next
    assert.ok(h.core.jobs.cancel(d).ok);
    const ids = (status?: 'queued' | 'claimed' | 'running' | 'done' | 'failed' | 'cancelled') => h.core.jobs.list({ status }).jobs.map((j) => j.id);
    assert.deepEqual(ids('done'), [a]);
    assert.deepEqual(ids('claimed'), [b]);
    assert.deepEqual(ids('cancelled'), [d]);
    assert.equal(ids('queued').length, 1);
    assert.deepEqual(ids('failed'), []);
    assert.equal(ids().length, 4);
    for (const [sql, params] of [
      [`SELECT * FROM jobs INDEXED BY jobs_ended WHERE ${ENDED_CONDITION} AND status = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, ['done', 1e15, 50]],
      ["SELECT 'queued' AS status, COUNT(*) AS n FROM jobs INDEXED BY jobs_queued WHERE status = 'queued'", []],
      [`SELECT status, COUNT(*) AS n FROM jobs INDEXED BY jobs_ended WHERE ${ENDED_CONDITION} GROUP BY status`, []],
      ["SELECT * FROM jobs INDEXED BY jobs_queued WHERE status = 'queued' AND seq < ? ORDER BY seq DESC LIMIT ?", [1e15, 50]],
      ["SELECT 1 AS x FROM jobs INDEXED BY jobs_due WHERE status = 'queued' AND not_before > 0 AND not_before > ? AND not_before <= ? LIMIT 1", [0, 1]],
    ] as const) {
      const plan = h.sql.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, ...params).map((r) => r.detail).join(' | ');
      assert.doesNotMatch(plan, /SCAN jobs(?! USING)/, `${sql} → ${plan}`);
    }
  });

  it("a job's statements build no temporary B-tree (an IN list of three or more values or a RETURNING builds one each run)", () => {
    const h = makeHarness();
    // One engine, as most workers serve (several pick the best of their queue heads with a sort).
    const w = connectWorker(h, capabilities({ taskKinds: ['llm'], supportedModels: ['synthetic-llm'], supportedModelsPerKind: { llm: ['synthetic-llm'] } }));
    // Every statement one job's life runs, as it runs them: created (offered at once), accepted, done.
    const seen = statementsRun(h, ['run', 'get', 'all'], () => {
      const created = h.core.jobs.createMany([llm('a'), llm('b')]);
      assert.ok(created.ok);
      const [a] = created.value.map((j) => j.id) as [string];
      send(h, w.connId, { type: 'accept', jobId: a, attempt: 1 });
      send(h, w.connId, { type: 'completeJson', jobId: a, attempt: 1, result: {} }); // b is claimed by the same worker
    });
    const writes = [...seen].filter((text) => /^\s*(INSERT INTO jobs|UPDATE jobs)\b/.test(text));
    assert.ok(writes.length >= 3, `the insert, the claim and the result ran: ${writes.join(' ; ')}`);
    for (const text of writes) {
      // EXPLAIN lists the program with its triggers and partial-index conditions. An IN list of
      // constants builds a keyed ephemeral table; RETURNING one without a key (and, being a trigger,
      // makes the statement keep a statement journal): the claim reads, then updates, instead.
      const ops = h.sql.all<{ opcode: string; p4: string | null }>(`EXPLAIN ${text}`);
      const ephemeral = ops.filter((op) => op.opcode === 'OpenEphemeral');
      assert.deepEqual(ephemeral, [], `${text.replace(/\s+/g, ' ')} builds a temporary B-tree`);
      assert.doesNotMatch(text, /\bRETURNING\b/, 'no RETURNING on the job path');
    }
  });

  it('the sweeps and the wake-up time read the index of held claims, never the table', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    assert.ok(h.core.jobs.createMany(['a', 'b'].map(llm)).ok);
    assert.equal(h.channel.of(w.connId, 'offer').length, 1);
    // Every statement the wake-up time and the periodic work read with, as they run them.
    const seen = statementsRun(h, ['get', 'all'], () => {
      h.core.housekeeping.nextWakeAt(h.clock.now());
      h.clock.advance(120_000);
      void h.core.housekeeping.runDue(h.clock.now());
    });
    const held = [...seen].filter((text) => /FROM jobs\b/.test(text) && /claimed_at|lease_expires_at/.test(text));
    assert.ok(held.length >= 3, `the lease sweep, the offer take-back and the deadlines ran: ${held.join(' ; ')}`);
    for (const text of held) {
      const params = Array.from({ length: (text.match(/\?/g) ?? []).length }, () => 0);
      const plan = h.sql.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, ...params).map((r) => r.detail).join(' | ');
      assert.match(plan, /USING (COVERING )?INDEX jobs_held/, `${text} → ${plan}`);
      assert.doesNotMatch(plan, /SCAN jobs(?! USING)/, `${text} → ${plan}`);
    }
  });

  it('a backlog for an engine the worker lacks does not stand between it and its own jobs', () => {
    const h = makeHarness();
    // 300 image jobs queue first; the worker serves llm only.
    for (let i = 0; i < 300; i++) {
      const r = h.core.jobs.create({ model: 'synthetic-image', task: { kind: 'image', prompt: `p${i}`, width: 64, height: 64, steps: 1, ext: 'png' }, gameId: '', assetName: '', priority: 0 });
      assert.ok(r.ok);
    }
    const job = h.core.jobs.create(llm('mine'));
    assert.ok(job.ok);
    const w = connectWorker(h, capabilities({ taskKinds: ['llm'], supportedModelsPerKind: { llm: ['synthetic', 'synthetic-llm'] } }));
    assert.equal(h.channel.of(w.connId, 'offer')[0]?.claim.jobId, job.value.id);
    const plan = h.sql
      .all<{ detail: string }>(
        "EXPLAIN QUERY PLAN SELECT id FROM jobs INDEXED BY jobs_queue WHERE status = 'queued' AND kind = ? AND engine = ? AND not_before <= ? AND vram_gb_estimate <= ? ORDER BY priority DESC, seq LIMIT 1",
        'llm',
        'synthetic',
        0,
        12,
      )
      .map((r) => r.detail)
      .join(' | ');
    assert.match(plan, /SEARCH jobs USING INDEX jobs_queue \(kind=\? AND engine=\?\)/);
  });
});

describe('the failure counter', () => {
  it('a done job resets it, also after the worker was seen at 0 before (done, fail, fail, done, fail, fail: no cooldown)', () => {
    const h = makeHarness({ cooldownAfterFailures: 3, cooldownMs: 60_000, retryBackoffMs: 0 });
    const w = connectWorker(h);
    const failures = () => h.core.stores.workers.get(w.workerId)?.consecutive_failures;
    const run = (ok: boolean, n: number) => {
      const job = h.core.jobs.create(llm(`j${n}`));
      assert.ok(job.ok);
      if (ok) send(h, w.connId, { type: 'completeJson', jobId: job.value.id, attempt: 1, result: {} });
      else send(h, w.connId, { type: 'fail', jobId: job.value.id, attempt: 1, error: 'oom', retryable: false });
    };
    run(true, 1);
    assert.equal(failures(), 0);
    run(false, 2);
    run(false, 3);
    assert.equal(failures(), 2);
    run(true, 4);
    assert.equal(failures(), 0, 'reset by the done job');
    run(false, 5);
    run(false, 6);
    assert.equal(failures(), 2, 'no cooldown: the counter started over');
    assert.equal(h.core.stores.workers.get(w.workerId)?.cooldown_until ?? null, null);
  });

  it('a result is one statement without a transaction unit once the worker is known at 0, and one unit with the reset while it has failures', () => {
    const h = makeHarness({ cooldownAfterFailures: 5, retryBackoffMs: 0 });
    const w = connectWorker(h);
    const failures = () => h.core.stores.workers.get(w.workerId)?.consecutive_failures;
    const units = (fn: () => void) => {
      let n = 0;
      const { transaction } = h.sql;
      h.sql.transaction = ((body: () => unknown) => (n++, transaction.call(h.sql, body))) as typeof transaction;
      try {
        fn();
      } finally {
        h.sql.transaction = transaction;
      }
      return n;
    };
    const job = (n: number) => {
      const made = h.core.jobs.create(llm(`j${n}`));
      assert.ok(made.ok);
      return made.value.id;
    };
    const complete = (jobId: string) => send(h, w.connId, { type: 'completeJson', jobId, attempt: 1, result: {} });
    const first = job(1);
    assert.equal(units(() => complete(first)), 1, 'not yet known at 0: the result and the reset in one unit');
    const second = job(2);
    assert.equal(units(() => complete(second)), 0, 'known at 0: the guarded UPDATE alone');
    const stored = h.core.jobs.get(second);
    assert.ok(stored.ok);
    assert.equal(stored.value.status, 'done');
    const third = job(3);
    send(h, w.connId, { type: 'fail', jobId: third, attempt: 1, error: 'oom', retryable: false });
    assert.equal(failures(), 1);
    // With a failure counted, the reset is a second statement: the two stay all-or-nothing.
    const fourth = job(4);
    const { run } = h.sql;
    h.sql.run = ((text: string, ...params: never[]) => {
      if (text.startsWith('UPDATE workers SET consecutive_failures = 0')) throw new Error('disk I/O error');
      return run.call(h.sql, text, ...params);
    }) as typeof run;
    try {
      assert.throws(() => complete(fourth), /disk I\/O error/);
    } finally {
      h.sql.run = run;
    }
    const after = h.core.jobs.get(fourth);
    assert.ok(after.ok);
    assert.equal(after.value.status, 'claimed', 'the result rolled back with the failed reset');
    assert.equal(failures(), 1);
  });
});

describe('claimNextFor within a Durable Object’s parameter limit', () => {
  it('binds 3 + 2 per (kind, engine) pair whatever the skip list, and still honours every skip', () => {
    const h = makeHarness();
    const created = h.core.jobs.createMany(Array.from({ length: 130 }, (_, i) => llm(`job ${i}`)));
    assert.ok(created.ok);
    const ids = created.value.map((j) => j.id);
    let bound = 0;
    const counting = {
      ...h.ports.sql,
      get: (sql: string, ...params: unknown[]) => {
        bound = Math.max(bound, params.length);
        return h.ports.sql.get(sql, ...(params as never[]));
      },
      run: (sql: string, ...params: unknown[]) => {
        bound = Math.max(bound, params.length);
        return h.ports.sql.run(sql, ...(params as never[]));
      },
    };
    const store = new JobStore(counting as typeof h.ports.sql);
    // 20 pairs (the synthetic llm one last) and the first 120 jobs refused as unsupported.
    const pairs = [...Array.from({ length: 19 }, (_, i) => `image engine-${i}`), 'llm synthetic'];
    const claimed = store.claimNextFor('w-many', pairs, 24, ids.slice(0, 120), h.clock.now(), h.clock.now() + 30_000);
    assert.equal(claimed?.id, ids[120], 'the first job not skipped');
    assert.ok(bound <= 100, `${bound} parameters bound; a Durable Object takes at most 100`);
    assert.equal(bound, 3 + 2 * pairs.length);
  });
});
