/**
 * Prometheus metrics through prom-client (the text exposition format, label escaping, histogram
 * buckets: its code, not ours). This module is the one place that says how a program of ours sets
 * up its registry; nothing in it is specific to the worker, so the studio's `/metrics` can take it
 * as it is (or from a shared package once a second program uses it).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/** `text/plain; version=0.0.4; charset=utf-8`. */
export const EXPOSITION_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;

export interface RegistryOptions {
  /** Labels on every series (e.g. `{ program: 'studio' }`). */
  labels?: Record<string, string>;
  /**
   * prom-client's process metrics (CPU, RSS, heap, event-loop lag, GC). Off by default: the worker
   * daemon's idle CPU and memory are budgeted, and its own gauges say what an operator needs.
   */
  processMetrics?: boolean;
  /** Prefix for the process metrics' names (`studio_` → `studio_process_cpu_seconds_total`). */
  processPrefix?: string;
}

/**
 * A registry of its own for one program instance, never prom-client's global one: two daemons (or
 * a studio and its embedded worker) in one process keep their series apart.
 */
export function createMetricsRegistry(options: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.processMetrics) collectDefaultMetrics({ register: registry, ...(options.processPrefix ? { prefix: options.processPrefix } : {}) });
  return registry;
}
