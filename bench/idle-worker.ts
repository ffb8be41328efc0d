/**
 * `npm run bench:idle`: what an idle worker daemon costs the operator's PC. A real daemon
 * (`studio-worker run`, default config apart from the bench's credentials) registered with and
 * connected to a real studio, with no job: its resident memory and its CPU share over a stretch
 * of idling. See bench/README.md.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StudioClient } from '@studio-worker/client';
import { BenchError } from './errors.ts';
import { benchMain, parseBenchFlags, wholeNumber as wholeNumberFlag } from './flags.ts';
import { processCpuSeconds, processStatusKb } from './machine-cpu.ts';
import { buildWorker, WORKER_PACKAGE_DIR } from '../scripts/build-worker.ts';
import { startStudioProcess } from './studio-process.ts';
import { startWorkerProcess } from './worker-process.ts';

const USAGE = 'usage: npm run bench:idle -- [--seconds S] [--settle-seconds S] [--from bundle|source] [--json] [--keep]';

/** The issue's targets for an idle daemon. */
export const IDLE_TARGETS = { rssMb: 80, cpuPercent: 0.5 } as const;

export interface IdleOptions {
  /** `bundle`: the esbuild output an installed worker runs (npm run build); `source`: the checkout's TypeScript. */
  from: 'bundle' | 'source';
  seconds: number;
  settleSeconds: number;
  json: boolean;
  keep: boolean;
}

export function parseIdleArgs(argv: readonly string[]): IdleOptions {
  const values = parseBenchFlags(argv, { seconds: { type: 'string' }, 'settle-seconds': { type: 'string' }, from: { type: 'string' } }, USAGE);
  const from = values.from ?? 'bundle';
  if (from !== 'bundle' && from !== 'source') throw new BenchError('bad_flag', `--from must be bundle or source (got "${from}")\n${USAGE}`);
  return {
    from,
    seconds: wholeNumberFlag('seconds', values.seconds, 60, 1, 3600, USAGE),
    settleSeconds: wholeNumberFlag('settle-seconds', values['settle-seconds'], 10, 0, 600, USAGE),
    json: values.json,
    keep: values.keep,
  };
}

export interface IdleFigures {
  /** VmRSS at the end of the idle stretch, MiB. */
  rssMb: number;
  /** CPU time over the idle stretch as a share of one core, %. */
  cpuPercent: number;
  from: IdleOptions['from'];
  seconds: number;
  /** Largest VmRSS sampled (once a second) during the stretch, MiB. */
  rssMaxMb: number;
  /** VmRSS right after the studio welcomed the daemon, MiB. */
  rssAtWelcomeMb: number;
  /** VmHWM: the peak since the daemon started (start-up included), MiB. */
  peakRssMb: number;
  /** The end's VmRSS split: the process's own memory, and pages of files it maps (mostly node's binary). */
  rssAnonMb: number;
  rssFileMb: number;
  /** Native libraries an idle daemon should not have loaded (libvips: sharp; onnxruntime), found in /proc/<pid>/maps. */
  unneededLibraries: string[];
  /** Node's own modules an idle daemon should not have loaded (UNNEEDED_BUILTINS), as it listed them when it stopped. */
  unneededModules: string[];
}

/** Loaded on first use only (engines/shared/sharp.ts, the onnx engine): an idle daemon maps none of them. */
const UNNEEDED_WHEN_IDLE = ['libvips', 'onnxruntime'];
/**
 * Node's fetch (undici, with the http2 and web streams it loads): the daemon makes its HTTP calls with
 * node:http, and an ES module import of node:http alone loads undici (platform/node-http.ts says why).
 */
const UNNEEDED_BUILTINS = ['internal/deps/undici/undici', 'http2'];

/** The names in `UNNEEDED_BUILTINS` that the daemon's list (`NativeModule <name>` lines) holds. */
function loadedBuiltins(file: string): string[] {
  let list: string[];
  try {
    list = readFileSync(file, 'utf8').split('\n');
  } catch {
    throw new BenchError('no_module_list', `the daemon did not write its list of loaded modules to ${file} when it stopped`);
  }
  return UNNEEDED_BUILTINS.filter((name) => list.includes(`NativeModule ${name}`));
}

function mappedLibraries(pid: number, names: readonly string[]): string[] {
  let maps = '';
  try {
    maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return [];
  }
  return names.filter((name) => maps.includes(name));
}

const mb = (kb: number | undefined) => Math.round(((kb ?? Number.NaN) / 1024) * 10) / 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runIdle(options: IdleOptions, say: (line: string) => void): Promise<IdleFigures> {
  const workDir = mkdtempSync(join(tmpdir(), 'bench-idle-'));
  // The bundle goes next to the package's own dist/ so that its imports resolve like an installed one's.
  const bundleDir = options.from === 'bundle' ? join(WORKER_PACKAGE_DIR, `dist.bench-idle-${process.pid}`) : undefined;
  if (bundleDir) {
    say('building the worker bundle (npm run build)…');
    await buildWorker({ outDir: bundleDir });
  }
  const studio = await startStudioProcess({ keepDataDir: options.keep });
  // Nothing here is timed: the typed client makes the two calls.
  const api = new StudioClient({ url: studio.url, token: studio.adminToken });
  let worker: Awaited<ReturnType<typeof startWorkerProcess>> | undefined;
  try {
    const { workerId, authToken } = await api.createWorker('bench-idle');
    say(`studio on ${studio.url}; starting the worker daemon…`);
    const builtinsFile = join(workDir, 'loaded-builtins.txt');
    worker = await startWorkerProcess({ dir: join(workDir, 'worker'), studioUrl: studio.url, workerId, authToken, entry: bundleDir && join(bundleDir, 'cli.js'), loadedBuiltinsFile: builtinsFile });
    const pid = worker.pid;
    const rssAtWelcomeMb = mb(processStatusKb(pid, 'VmRSS'));
    say(`welcomed (RSS ${rssAtWelcomeMb} MiB); settling ${options.settleSeconds} s, then idling ${options.seconds} s…`);
    await sleep(options.settleSeconds * 1000);
    const cpu0 = processCpuSeconds(pid);
    const t0 = performance.now();
    let rssMaxKb = 0;
    while (performance.now() - t0 < options.seconds * 1000) {
      await sleep(Math.min(1000, options.seconds * 1000 - (performance.now() - t0)));
      rssMaxKb = Math.max(rssMaxKb, processStatusKb(pid, 'VmRSS') ?? 0);
    }
    const cpu1 = processCpuSeconds(pid);
    const wall = (performance.now() - t0) / 1000;
    if (cpu0 === undefined || cpu1 === undefined) throw new BenchError('no_proc', 'the idle bench reads /proc/<pid>: it needs Linux, and a daemon that stays up');
    const health = await api.health();
    if (health.workersOnline !== 1) throw new BenchError('worker_disconnected', `the studio counts ${health.workersOnline} workers online after the idle stretch, not 1`);
    const figures = {
      rssMb: mb(processStatusKb(pid, 'VmRSS')),
      cpuPercent: Math.round(((cpu1 - cpu0) / wall) * 100 * 100) / 100,
      from: options.from,
      seconds: Math.round(wall),
      rssMaxMb: mb(rssMaxKb),
      rssAtWelcomeMb,
      peakRssMb: mb(processStatusKb(pid, 'VmHWM')),
      rssAnonMb: mb(processStatusKb(pid, 'RssAnon')),
      rssFileMb: mb(processStatusKb(pid, 'RssFile')),
      unneededLibraries: mappedLibraries(pid, UNNEEDED_WHEN_IDLE),
    };
    // The module list is written as the daemon exits.
    await worker.stop();
    return { ...figures, unneededModules: loadedBuiltins(builtinsFile) };
  } catch (error) {
    if (error instanceof BenchError && worker) error.message += `\n--- worker output ---\n${worker.outputTail()}`;
    throw error;
  } finally {
    await worker?.stop();
    await studio.stop();
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
    if (!options.keep) rmSync(workDir, { recursive: true, force: true });
    else process.stderr.write(`kept the worker's dir ${workDir} and the studio data in ${studio.dataDir}\n`);
  }
}

export function idleReport(f: IdleFigures): string {
  const ok = (v: boolean) => (v ? 'yes' : 'NO');
  return [
    `idle worker daemon (${f.from}): registered, connected, no job; ${f.seconds} s of idling`,
    `  RSS            ${f.rssMb.toFixed(1)} MiB (target <= ${IDLE_TARGETS.rssMb}: ${ok(f.rssMb <= IDLE_TARGETS.rssMb)}); max ${f.rssMaxMb.toFixed(1)}, at welcome ${f.rssAtWelcomeMb.toFixed(1)}, peak since start ${f.peakRssMb.toFixed(1)}`,
    `  CPU            ${f.cpuPercent.toFixed(2)} % of one core (target <= ${IDLE_TARGETS.cpuPercent}: ${ok(f.cpuPercent <= IDLE_TARGETS.cpuPercent)})`,
    `  of the RSS     ${f.rssAnonMb.toFixed(1)} MiB its own, ${f.rssFileMb.toFixed(1)} MiB mapped files (node's binary, libraries)`,
    `  loaded         ${f.unneededLibraries.length === 0 ? 'no library an idle daemon does not need' : `${f.unneededLibraries.join(', ')}: an idle daemon should not load these`}`,
    `                 ${f.unneededModules.length === 0 ? `none of node's modules it does not need (${UNNEEDED_BUILTINS.join(', ')})` : `node's ${f.unneededModules.join(', ')}: an idle daemon should not load these`}`,
  ].join('\n');
}

if (import.meta.main) await benchMain('bench:idle', parseIdleArgs, async (options, say) => {
  const figures = await runIdle(options, say);
  return options.json ? JSON.stringify(figures) : idleReport(figures);
});
