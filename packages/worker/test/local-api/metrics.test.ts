import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, createMetricsRegistry, EXPOSITION_CONTENT_TYPE, Gauge, Histogram } from '../../src/observe/prometheus.ts';
import { offerFrame } from '../helpers/fake-studio.ts';
import { useScenarios } from '../helpers/scenario.ts';
import { Api, EPHEMERAL_PORT } from './harness.ts';
import { parseExposition } from './prometheus-parser.ts';

describe('Prometheus exposition', () => {
  it('renders counters, gauges and histogram (prom-client, our registry setup) that a strict parser reads back, label values escaped', async () => {
    const registry = createMetricsRegistry();
    const counter = new Counter({ name: 'demo_total', help: 'A counter.\nSecond line.', labelNames: ['path'] as const, registers: [registry] });
    counter.inc({ path: 'a"b\\c\nd' }, 2);
    counter.inc({ path: 'plain' });
    const gauge = new Gauge({ name: 'demo_ratio', help: 'A gauge.', registers: [registry] });
    gauge.set(0.25);
    // Sorted bounds: prom-client (15.1) neither sorts nor checks them, and counts wrongly when unsorted.
    const histogram = new Histogram({ name: 'demo_seconds', help: 'A histogram.', labelNames: ['kind'] as const, buckets: [0.1, 1, 10], registers: [registry] });
    for (const value of [0.05, 0.5, 0.5, 20]) histogram.observe({ kind: 'image' }, value);
    const parsed = parseExposition(await registry.metrics());
    assert.equal(parsed.value('demo_total', { path: 'a"b\\c\nd' }), 2);
    assert.equal(parsed.value('demo_total', { path: 'plain' }), 1);
    assert.equal(parsed.value('demo_ratio'), 0.25);
    assert.deepEqual(
      parsed.samples('demo_seconds_bucket').map((sample) => [sample.labels.le, sample.value]),
      [['0.1', 1], ['1', 3], ['10', 3], ['+Inf', 4]],
    );
    assert.equal(parsed.value('demo_seconds_sum', { kind: 'image' }), 21.05);
    assert.equal(parsed.families.get('demo_seconds')?.type, 'histogram');
    assert.throws(() => counter.inc({ path: 'plain' }, -1), /not possible to decrease a counter/);
    assert.equal(EXPOSITION_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
  });

  it('a registry per program instance: default labels on every series, no series shared between two', async () => {
    const studio = createMetricsRegistry({ labels: { program: 'studio' } });
    const worker = createMetricsRegistry();
    new Counter({ name: 'same_name_total', help: 'x', registers: [studio] }).inc();
    new Counter({ name: 'same_name_total', help: 'x', registers: [worker] });
    assert.equal(parseExposition(await studio.metrics()).value('same_name_total', { program: 'studio' }), 1);
    assert.equal(parseExposition(await worker.metrics()).value('same_name_total'), 0);
  });

  it('the parser refuses what Prometheus would refuse', () => {
    assert.throws(() => parseExposition('x 1'), /newline/);
    assert.throws(() => parseExposition('x 1\n'), /without a TYPE/);
    assert.throws(() => parseExposition('# TYPE x counter\nx{a="1} 1\n'), /unterminated|bad/);
    assert.throws(() => parseExposition('# TYPE x counter\nx one\n'), /bad sample/);
    assert.throws(() => parseExposition('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'), /cumulative/);
    assert.throws(() => parseExposition('# TYPE a counter\na 1\n# TYPE b counter\nb 1\na 2\n'), /one block/);
  });
});

describe('GET /metrics (real daemon, fake studio)', () => {
  const scenario = useScenarios();

  it('counts jobs by kind, outcome and source, times them, and follows the session and its reconnects', async () => {
    const { studio, start } = await scenario({ extra: EPHEMERAL_PORT });
    const daemon = start();
    const api = await Api.of(daemon);
    const first = await studio.ready(0);
    first.send(offerFrame({ jobId: 'm-ok' }));
    await first.jobFrame('completeJson', 'm-ok');
    first.send({
      type: 'offer',
      claim: {
        jobId: 'm-fail',
        model: 'needs-a-file',
        task: { kind: 'image', prompt: 'x' },
        modelSource: { engine: 'synthetic', files: [{ role: 'model', url: 'http://example.invalid/m.bin', filename: 'm.bin' }] },
        attempt: 1,
      },
    });
    await first.jobFrame('fail', 'm-fail');
    const local = await api.post('/v1/chat/completions', { model: 'synthetic-llm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(local.status, 200);

    const answer = await api.get('/metrics');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const metrics = parseExposition(answer.text);
    assert.equal(metrics.value('studio_worker_jobs_total', { kind: 'llm', outcome: 'done', source: 'studio' }), 1);
    assert.equal(metrics.value('studio_worker_jobs_total', { kind: 'llm', outcome: 'done', source: 'local' }), 1);
    assert.equal(metrics.value('studio_worker_jobs_total', { kind: 'image', outcome: 'failed', source: 'studio' }), 1);
    assert.equal(metrics.value('studio_worker_job_duration_seconds_count', { kind: 'llm' }), 2);
    assert.equal(metrics.value('studio_worker_job_duration_seconds_count', { kind: 'image' }), 1);
    assert.ok(metrics.value('studio_worker_job_duration_seconds_sum', { kind: 'llm' }) > 0);
    const ratio = metrics.value('studio_worker_engine_busy_ratio');
    assert.ok(ratio > 0 && ratio <= 1, `busy ratio ${ratio}`);
    assert.ok(metrics.value('studio_worker_engine_busy_seconds_total') > 0);
    assert.equal(metrics.value('studio_worker_download_bytes_total'), 0);
    assert.equal(metrics.value('studio_worker_session_state', { state: 'connected' }), 1);
    assert.equal(metrics.samples('studio_worker_session_state').filter((sample) => sample.value === 1).length, 1, 'exactly one current state');
    assert.equal(metrics.value('studio_worker_reconnects_total'), 0);
    assert.match(Object.keys(metrics.samples('studio_worker_info')[0]?.labels ?? {}).join(), /version/);
    assert.equal(metrics.value('studio_worker_info'), 1);
    assert.equal(metrics.families.get('studio_worker_jobs_total')?.type, 'counter');
    assert.equal(metrics.families.get('studio_worker_job_duration_seconds')?.type, 'histogram');

    // The studio drops the connection: one reconnect, and the state follows.
    first.socket.terminate();
    await studio.ready(1);
    const again = parseExposition((await api.get('/metrics')).text);
    assert.equal(again.value('studio_worker_reconnects_total'), 1);
    assert.equal(again.value('studio_worker_session_state', { state: 'connected' }), 1);
    assert.equal((await daemon.stop()).code, 0);
  });
});
