import type { LatencyResult, ThroughputResult } from './phases.ts';
import { ms3 } from './stats.ts';

/** DESIGN.md's first targets on a 2-core machine. */
export const TARGETS = { dispatchP50Ms: 1, dispatchP99Ms: 5, jobsPerSec: 5000 } as const;
/** The peer to beat, measured on the same class of machine (BullMQ + Redis, 100 concurrent no-op jobs). */
export const BULLMQ = { dispatchP50Ms: 0.43, dispatchP99Ms: 3, jobsPerSec: 14_000 } as const;

export interface BenchFigures {
  workers: number;
  dispatchP50Ms: number;
  dispatchP99Ms: number;
  jobsPerSec: number;
  dispatchP90Ms: number;
  dispatchMaxMs: number;
  dispatchMeanMs: number;
  samples: number;
  jobs: number;
  submitPerSec: number;
  studioPeakRssMb?: number;
  /** Cores the studio and this process kept busy during the throughput phase. */
  studioCpuCores?: number;
  benchCpuCores: number;
  /** Cores other processes used meanwhile (the busier phase); above OTHER_LOAD_WARNING the run was disturbed. */
  otherCpuCores?: number;
  /** Jobs in the table before the run (`--preload`). */
  preloadedJobs: number;
  /** The slowest dashboard query's median (job list, each status filter, an older page, with the counts), in ms. */
  dashboardMs: number;
  dashboardSlowest: string;
  /** The slowest single dashboard answer. */
  dashboardMaxMs: number;
}

/** Other processes busier than this during a phase make the figures unrepresentative. */
export const OTHER_LOAD_WARNING = 0.2;

const round2 = (v: number) => Math.round(v * 100) / 100;

export function figures(
  workers: number,
  latency: LatencyResult,
  throughput: ThroughputResult,
  peakRssMb: number | undefined,
  preloadedJobs = 0,
  dashboard = { medianMs: 0, maxMs: 0, slowest: '' },
): BenchFigures {
  const s = latency.summary;
  const out: BenchFigures = {
    // The four keys the issue asks for come first, in this order.
    workers,
    dispatchP50Ms: ms3(s.p50),
    dispatchP99Ms: ms3(s.p99),
    jobsPerSec: Math.round(throughput.jobsPerSec),
    dispatchP90Ms: ms3(s.p90),
    dispatchMaxMs: ms3(s.max),
    dispatchMeanMs: ms3(s.mean),
    samples: s.count,
    jobs: throughput.jobs,
    submitPerSec: Math.round(throughput.submitPerSec),
    benchCpuCores: round2(throughput.cpu.bench),
    preloadedJobs,
    dashboardMs: ms3(dashboard.medianMs),
    dashboardSlowest: dashboard.slowest,
    dashboardMaxMs: ms3(dashboard.maxMs),
  };
  if (peakRssMb !== undefined) out.studioPeakRssMb = Math.round(peakRssMb * 10) / 10;
  if (throughput.cpu.studio !== undefined) out.studioCpuCores = round2(throughput.cpu.studio);
  const others = [latency.cpu.other, throughput.cpu.other].filter((v): v is number => v !== undefined);
  if (others.length > 0) out.otherCpuCores = round2(Math.max(...others));
  return out;
}

export function jsonLine(f: BenchFigures): string {
  return JSON.stringify(f);
}

const fmtMs = (v: number) => `${v.toFixed(3)} ms`;
const fmtRate = (v: number) => `${Math.round(v).toLocaleString('en-US')} /s`;
const met = (ok: boolean) => (ok ? 'yes' : 'NO');

/** The human report: a table of figures, targets, whether each is met, and the peer's numbers. */
export function humanReport(f: BenchFigures, latency: LatencyResult, throughput: ThroughputResult, client: string): string {
  const rows: Array<[string, string, string, string, string]> = [
    ['dispatch p50', fmtMs(f.dispatchP50Ms), `<= ${fmtMs(TARGETS.dispatchP50Ms)}`, met(f.dispatchP50Ms <= TARGETS.dispatchP50Ms), fmtMs(BULLMQ.dispatchP50Ms)],
    ['dispatch p90', fmtMs(f.dispatchP90Ms), '', '', ''],
    ['dispatch p99', fmtMs(f.dispatchP99Ms), `<= ${fmtMs(TARGETS.dispatchP99Ms)}`, met(f.dispatchP99Ms <= TARGETS.dispatchP99Ms), `~${fmtMs(BULLMQ.dispatchP99Ms)}`],
    ['dispatch max', fmtMs(f.dispatchMaxMs), '', '', ''],
    ['completed jobs', fmtRate(f.jobsPerSec), `>= ${fmtRate(TARGETS.jobsPerSec)}`, met(f.jobsPerSec >= TARGETS.jobsPerSec), `~${fmtRate(BULLMQ.jobsPerSec)}`],
    ['submitted jobs', fmtRate(f.submitPerSec), '', '', ''],
    ['dashboard query, slowest median', `${fmtMs(f.dashboardMs)} (${f.dashboardSlowest})`, '< 50.000 ms', met(f.dashboardMs < 50), ''],
    ['dashboard query, max', fmtMs(f.dashboardMaxMs), '', '', ''],
    ['studio peak RSS', f.studioPeakRssMb === undefined ? 'n/a' : `${f.studioPeakRssMb.toFixed(1)} MiB`, '', '', ''],
    ['studio CPU (throughput)', f.studioCpuCores === undefined ? 'n/a' : `${f.studioCpuCores.toFixed(2)} cores`, '', '', ''],
    ['bench CPU (throughput)', `${f.benchCpuCores.toFixed(2)} cores`, '', '', ''],
    ['other processes', f.otherCpuCores === undefined ? 'n/a' : `${f.otherCpuCores.toFixed(2)} cores`, `<= ${OTHER_LOAD_WARNING}`, f.otherCpuCores === undefined ? '' : met(f.otherCpuCores <= OTHER_LOAD_WARNING), ''],
  ];
  const header: [string, string, string, string, string] = ['figure', 'measured', 'target', 'met', 'BullMQ+Redis'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [
    `dispatch bench: ${f.workers} simulated workers, embedded studio on loopback, 0 ms engine, every state change in SQLite` +
      (f.preloadedJobs > 0 ? `, ${f.preloadedJobs.toLocaleString('en-US')} jobs preloaded` : ''),
    `  latency:    ${latency.summary.count} jobs one at a time (after ${latency.warmup} warm-up), job created -> offer received`,
    `  throughput: ${f.jobs} jobs in batches, ${throughput.seconds.toFixed(2)} s from the first batch to the last completeAck ` +
      `(submitted in ${throughput.submitSeconds.toFixed(2)} s); HTTP client: ${client}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    ...(f.otherCpuCores !== undefined && f.otherCpuCores > OTHER_LOAD_WARNING
      ? ['', `warning: other processes kept ${f.otherCpuCores.toFixed(2)} cores busy during a phase; these figures understate the studio. Run again on a quiet machine.`]
      : []),
  ].join('\n');
}
