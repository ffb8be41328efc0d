import { Hono } from 'hono';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

const SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * GET /metrics in the Prometheus text format (admin or read token). Each scrape takes one snapshot
 * from the core (gauges now, endings since the last scrape) and folds it into prom-client metrics.
 */
export function metricsRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/metrics', requireAdmin());
  const registry = new Registry();
  const open = new Gauge({ name: 'studio_jobs_open', help: 'Jobs not yet ended, by model and status (queued, claimed, running)', labelNames: ['model', 'status'], registers: [registry] });
  const online = new Gauge({ name: 'studio_workers_online', help: 'Online workers by engine they serve', labelNames: ['engine'], registers: [registry] });
  const finished = new Counter({ name: 'studio_jobs_finished_total', help: 'Jobs that ended, by model and outcome (done, failed, cancelled)', labelNames: ['model', 'outcome'], registers: [registry] });
  const attempts = new Counter({ name: 'studio_attempts_total', help: 'Claims that ended, by outcome (lost = the lease expired or the worker went away)', labelNames: ['outcome'], registers: [registry] });
  const wait = new Histogram({ name: 'studio_dispatch_latency_seconds', help: 'From job creation to its (last) claim, observed when the job ends', labelNames: ['model'], buckets: SECONDS, registers: [registry] });
  const run = new Histogram({ name: 'studio_job_run_seconds', help: 'From a worker accepting the job to its result, observed when the job ends', labelNames: ['model'], buckets: SECONDS, registers: [registry] });
  const bytes = new Counter({ name: 'studio_result_upload_bytes_total', help: 'Bytes of result files stored', registers: [registry] });

  app.get('/metrics', async (c) => {
    const snap = deps.core.metrics.snapshot();
    open.reset();
    for (const o of snap.open) open.set({ model: o.model, status: o.status }, o.count);
    online.reset();
    for (const w of snap.workersOnline) online.set({ engine: w.engine }, w.count);
    for (const e of snap.ended) {
      finished.inc({ model: e.model, outcome: e.status });
      if (e.waitMs !== null) wait.observe({ model: e.model }, e.waitMs / 1000);
      if (e.runMs !== null) run.observe({ model: e.model }, e.runMs / 1000);
      if (e.resultBytes) bytes.inc(e.resultBytes);
    }
    for (const a of snap.attempts) attempts.inc({ outcome: a.outcome }, a.count);
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });
  return app;
}
