/**
 * `npm run bench:sessions`: how much memory the real studio process needs per idle worker session.
 * DESIGN.md's target: 10,000 idle worker sessions held by one embedded studio, <= 30 KB each.
 * See bench/README.md for what is measured and how.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { WebSocket } from 'ws';
import { HelloFrame, SUBPROTOCOL, WelcomeFrame, TASK_KINDS, type HeartbeatFrame, type WorkerCapabilities } from '@studio-worker/protocol';
import { createApiClient, type ApiClient } from './api-client.ts';
import { BenchError } from './errors.ts';
import { parseBenchFlags, wholeNumber as wholeNumberFlag } from './flags.ts';
import { processCpuSeconds, processStatusKb } from './machine-cpu.ts';
import { startStudioProcess, type StudioProcess } from './studio-process.ts';

const USAGE = `usage: npm run bench:sessions -- [--sessions N] [--concurrency C] [--heartbeat-ms MS] [--json] [--keep]`;

/** DESIGN.md: 10,000 idle sessions, at most 30 KB of studio memory each. */
export const SESSIONS_TARGET = 10_000;
export const KB_PER_SESSION_TARGET = 30;
/** File descriptors a process needs besides the sockets (stdio, SQLite, libuv, the HTTP agent …). */
const FD_HEADROOM = 256;
/** Set on the re-executed child that runs with the raised limit, so it does not raise it again. */
const RAISED_ENV = 'STUDIO_BENCH_NOFILE_RAISED';

export interface SessionsOptions {
  sessions: number;
  concurrency: number;
  heartbeatMs: number;
  json: boolean;
  keep: boolean;
}

function wholeNumber(name: string, raw: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  return wholeNumberFlag(name, raw, fallback, min, max, USAGE);
}

export function parseSessionsArgs(argv: readonly string[]): SessionsOptions {
  const values = parseBenchFlags(
    argv,
    {
      sessions: { type: 'string' },
      concurrency: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
    },
    USAGE,
  );
  return {
    sessions: wholeNumber('sessions', values.sessions, SESSIONS_TARGET, 1, 1_000_000),
    concurrency: wholeNumber('concurrency', values.concurrency, 32, 1, 1000),
    // The worker's own default heartbeat interval.
    heartbeatMs: wholeNumber('heartbeat-ms', values['heartbeat-ms'], 5000, 100, 600_000),
    json: values.json,
    keep: values.keep,
  };
}

/** Soft and hard "Max open files" of a process (/proc/<pid>/limits); undefined off Linux. */
export function openFileLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line ?? '').replace('Max open files', '').trim().split(/\s+/);
    const parse = (v: string | undefined) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
    if (!soft || !hard) return undefined;
    return { soft: parse(soft), hard: parse(hard) };
  } catch {
    return undefined;
  }
}

/** Local ports one source address can use towards one destination (net.ipv4.ip_local_port_range). */
function ephemeralPorts(): number | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && high !== undefined && high >= low ? high - low + 1 : undefined;
  } catch {
    return undefined;
  }
}

/** Resident memory (VmRSS) and its peak (VmHWM) of a process, in KiB. */
export function residentKb(pid: number | 'self'): { rssKb: number; hwmKb: number } {
  const field = (name: string) => {
    const value = processStatusKb(pid, name);
    if (value === undefined) throw new BenchError('no_proc', `/proc/${pid}/status has no ${name}: the sessions bench needs Linux`);
    return value;
  };
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

/**
 * A real worker's capability snapshot for the synthetic engine (every task kind), the same shape
 * and about the same size as what `studio-worker run` sends in hello and every heartbeat.
 */
function idleCapabilities(n: number): WorkerCapabilities {
  const perKind: WorkerCapabilities['supportedModelsPerKind'] = {};
  const suffix: Record<string, string> = { image: 'image', llm: 'llm', audio_stt: 'stt', audio_tts: 'tts', video: 'video' };
  for (const kind of TASK_KINDS) perKind[kind] = ['synthetic', `synthetic-${suffix[kind]}`];
  return {
    machineName: `bench-idle-${n}`,
    username: 'bench',
    agentVersion: '0.1.0',
    engine: 'multi',
    vramTotalGb: 0,
    vramThresholdGb: 12,
    autoEnabled: true,
    autoStart: false,
    autoUpdate: false,
    startMinimised: true,
    onlyWhenIdle: false,
    userPresence: 'idle',
    supportedModels: [...new Set(Object.values(perKind).flat())].sort(),
    taskKinds: [...TASK_KINDS],
    supportedModelsPerKind: perKind,
    protocolFeatures: ['attempt', 'progress', 'cancel', 'resume', 'extended-offers'],
  };
}

/**
 * One idle worker session: a real WebSocket, hello → welcome, then a heartbeat every
 * `heartbeatMs` like the daemon. It never gets an offer (no jobs exist).
 */
export class IdleSession {
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly heartbeatText: string;
  private closing = false;
  /** Heartbeats answered (heartbeatAck) so far. */
  acks = 0;
  private ackWaiters: Array<{ after: number; resolve: () => void }> = [];

  readonly n: number;
  private readonly wsBase: string;
  private readonly workerId: string;
  private readonly authToken: string;
  private readonly heartbeatMs: number;
  private readonly localAddress: string;
  private readonly onLost: (error: BenchError) => void;

  constructor(n: number, wsBase: string, workerId: string, authToken: string, heartbeatMs: number, localAddress: string, onLost: (error: BenchError) => void) {
    this.n = n;
    this.wsBase = wsBase;
    this.workerId = workerId;
    this.authToken = authToken;
    this.heartbeatMs = heartbeatMs;
    this.localAddress = localAddress;
    this.onLost = onLost;
    const frame: HeartbeatFrame = { type: 'heartbeat', capabilities: idleCapabilities(n), inFlight: [] };
    this.heartbeatText = JSON.stringify(frame);
  }

  connect(timeoutMs = 30_000): Promise<void> {
    const url = `${this.wsBase}/graphics/api/workers/${encodeURIComponent(this.workerId)}/connect`;
    const ws = new WebSocket(url, SUBPROTOCOL, { headers: { Authorization: `Bearer ${this.authToken}` }, perMessageDeflate: false, localAddress: this.localAddress });
    this.ws = ws;
    const hello = JSON.stringify(HelloFrame.parse({ type: 'hello', authToken: this.authToken, capabilities: idleCapabilities(this.n), inFlight: [] }));
    return new Promise<void>((resolve, reject) => {
      let welcomed = false;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new BenchError('session_connect_failed', `session ${this.n} got no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('open', () => ws.send(hello));
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new BenchError('session_connect_failed', `the studio refused session ${this.n} with HTTP ${res.statusCode}`));
      });
      ws.on('error', (error) => {
        if (welcomed) return; // the close event follows
        clearTimeout(timer);
        reject(new BenchError('session_connect_failed', `session ${this.n} could not connect: ${error.message}${/EMFILE|EADDRNOTAVAIL/.test(error.message) ? ' (out of file descriptors or local ports; see bench/README.md)' : ''}`));
      });
      ws.on('close', (code, reason) => {
        clearInterval(this.timer);
        if (!welcomed) {
          clearTimeout(timer);
          reject(new BenchError('session_connect_failed', `the studio closed session ${this.n} before the welcome (${code} ${reason.toString()})`));
        } else if (!this.closing) {
          this.onLost(new BenchError('session_lost', `the studio closed idle session ${this.n} (${code} ${reason.toString()})`));
        }
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        const text = data.toString();
        if (!welcomed) {
          if (!WelcomeFrame.safeParse(JSON.parse(text)).success) {
            clearTimeout(timer);
            ws.terminate();
            reject(new BenchError('session_connect_failed', `session ${this.n} expected a welcome, got: ${text.slice(0, 300)}`));
            return;
          }
          welcomed = true;
          clearTimeout(timer);
          this.timer = setInterval(() => this.heartbeat(), this.heartbeatMs);
          resolve();
          return;
        }
        const type = (JSON.parse(text) as { type?: string }).type;
        if (type === 'heartbeatAck') {
          this.acks++;
          this.ackWaiters = this.ackWaiters.filter((w) => (this.acks > w.after ? (w.resolve(), false) : true));
        } else if (type === 'offer' || type === 'error') {
          this.onLost(new BenchError('unexpected_frame', `idle session ${this.n} got a ${type} frame: ${text.slice(0, 300)}`));
        }
      });
    });
  }

  /** Resolves at the next heartbeatAck after now (a full heartbeat round trip of this session). */
  nextAck(): Promise<void> {
    const after = this.acks;
    return new Promise((resolve) => this.ackWaiters.push({ after, resolve }));
  }

  private heartbeat(): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(this.heartbeatText);
  }

  close(): void {
    this.closing = true;
    clearInterval(this.timer);
    if (this.ws && this.ws.readyState !== WebSocket.CLOSED) this.ws.close(1000, 'bench finished');
  }
}

export interface SessionsResult {
  sessions: number;
  /** Studio memory per idle session: (RSS with the sessions open − RSS of the restarted studio before they connected) / N. */
  kbPerSession: number;
  /** RSS of the studio holding the N sessions. */
  studioRssMb: number;
  /** The studio that holds the sessions, started on the data dir with the N workers in it, before any session. */
  studioRssBeforeSessionsMb: number;
  studioPeakRssMb: number;
  /** The first studio (the one the workers were created through): RSS at start and after creating them. */
  firstStudioRssStartMb: number;
  firstStudioRssAfterCreateMb: number;
  /** Everything the sessions and the worker rows cost, per session: (RSS with the sessions − first studio's RSS at start) / N. */
  kbPerSessionWithRows: number;
  /** 10,000 sessions at the measured KB each, when N < 10,000. Extrapolated, not measured. */
  extrapolatedRssMbAtTarget?: number;
  createWorkersPerSec: number;
  connectsPerSec: number;
  benchRssMb: number;
  localAddresses: number;
  heartbeatMs: number;
  openFilesLimit?: number;
  /** Cores the studio used while the sessions idled through one heartbeat round. */
  studioIdleCpuCores?: number;
}

/** Run `f` over 0..count-1 with at most `concurrency` at once; the first failure stops new starts and is thrown. */
export async function bounded(count: number, concurrency: number, f: (i: number) => Promise<void>, abort: AbortSignal): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lane = async () => {
    while (failed === undefined && next < count) {
      if (abort.aborted) throw abort.reason;
      const i = next++;
      try {
        await f(i);
      } catch (error) {
        failed ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  if (failed !== undefined) throw failed;
}

/** The limits a run of N sessions needs, checked before anything starts. */
function checkLimits(sessions: number): { addresses: number; openFiles?: number } {
  const need = sessions + FD_HEADROOM;
  const limits = openFileLimits();
  if (limits && limits.soft < need) {
    throw new BenchError(
      'fd_limit',
      `${sessions} sessions need about ${need} open files in this process and in the studio, but the limit is ${limits.soft} (hard ${limits.hard}). ` +
        (limits.hard >= need ? `Raise it with \`ulimit -n ${need}\` (the bench tries this itself when it can).` : `The largest N here is about ${limits.hard - FD_HEADROOM}: run with --sessions ${limits.hard - FD_HEADROOM}, or raise the hard limit (root: /etc/security/limits.conf).`),
    );
  }
  // Each connection to 127.0.0.1:<studio port> needs its own local port per source address: spread
  // the sockets over 127.0.0.x source addresses when one address has too few ports (TIME_WAIT from
  // earlier runs takes some).
  const ports = ephemeralPorts() ?? 28_000;
  const addresses = Math.max(1, Math.ceil(sessions / Math.floor(ports * 0.6)));
  return { addresses, openFiles: limits?.soft };
}

/**
 * When this process may not open enough files but its hard limit allows it, run the bench again in
 * a shell that raises the soft limit (a process cannot raise its own from JavaScript). The studio
 * child inherits the raised limit. Resolves with the child's exit code, or undefined when not needed.
 */
export async function reexecWithRaisedLimit(sessions: number): Promise<number | undefined> {
  const limits = openFileLimits();
  const need = sessions + FD_HEADROOM;
  if (!limits || limits.soft >= need || limits.hard < need || process.env[RAISED_ENV]) return undefined;
  const child = spawn('/bin/sh', ['-c', 'ulimit -n "$0" && exec "$@"', String(need), process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [RAISED_ENV]: '1' },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 130 : 1))));
}


const mb = (kb: number) => Math.round(kb / 102.4) / 10;

/**
 * 1. The studio (bench/studio-process.ts) creates N approved workers through its admin API, then
 *    stops; its data dir stays. 2. A fresh studio process starts on that data dir: its RSS is the
 *    baseline (the worker rows, no sessions, none of the first studio's garbage). 3. N sessions
 *    connect (hello → welcome), then each completes one more heartbeat round trip. 4. RSS again.
 */
export async function runSessionsBench(options: SessionsOptions, say: (line: string) => void): Promise<SessionsResult> {
  const { addresses, openFiles } = checkLimits(options.sessions);
  const controller = new AbortController();
  let signals = 0;
  const interrupted = (signal: string) => {
    if (++signals > 1) process.exit(130);
    controller.abort(new BenchError('interrupted', `interrupted (${signal}); closing the sessions and stopping the studio`));
  };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  const sessions: IdleSession[] = [];
  let lost: BenchError | undefined;
  let first: StudioProcess | undefined;
  let second: StudioProcess | undefined;
  let current: { outputTail(): string } | undefined;
  try {
    say('starting the studio…');
    // Kept: the second studio serves the same data dir; removed at the end unless --keep.
    first = await startStudioProcess({ keepDataDir: true });
    current = first;
    const api: ApiClient = createApiClient('http', first.url, first.adminToken);
    // One request first, so the start figure is of a studio that has served something.
    await api.get('/health');
    const firstStart = residentKb(first.pid);
    say(`studio pid ${first.pid}, RSS ${(firstStart.rssKb / 1024).toFixed(1)} MB; creating ${options.sessions} workers (POST /workers, ${options.concurrency} at a time)…`);
    const credentials: Array<{ workerId: string; authToken: string }> = new Array(options.sessions);
    let t0 = performance.now();
    try {
      await bounded(
        options.sessions,
        options.concurrency,
        async (i) => {
          credentials[i] = await api.post<{ workerId: string; authToken: string }>('/workers', { label: `bench-idle-${i + 1}` });
        },
        controller.signal,
      );
    } finally {
      api.close();
    }
    const createWorkersPerSec = options.sessions / ((performance.now() - t0) / 1000);
    const firstCreated = residentKb(first.pid);
    await first.stop();

    say(`  ${Math.round(createWorkersPerSec)} workers/s; RSS ${(firstCreated.rssKb / 1024).toFixed(1)} MB. Restarting the studio on that data dir…`);
    second = await startStudioProcess({ keepDataDir: true, dataDir: first.dataDir, adminToken: first.adminToken });
    current = second;
    const api2: ApiClient = createApiClient('http', second.url, first.adminToken);
    let before: { rssKb: number; hwmKb: number };
    let held: { rssKb: number; hwmKb: number };
    let connectsPerSec: number;
    let idleCpuCores: number | undefined;
    try {
      const studioLimits = openFileLimits(second.pid);
      if (studioLimits && studioLimits.soft < options.sessions + FD_HEADROOM) {
        throw new BenchError('fd_limit', `the studio may open only ${studioLimits.soft} files; ${options.sessions} sessions need about ${options.sessions + FD_HEADROOM}`);
      }
      await api2.get('/health');
      before = residentKb(second.pid);
      say(`studio pid ${second.pid}, RSS ${(before.rssKb / 1024).toFixed(1)} MB; connecting ${options.sessions} sessions over ${addresses} source address(es)…`);
      const wsBase = second.url.replace(/^http/, 'ws');
      t0 = performance.now();
      let connected = 0;
      await bounded(
        options.sessions,
        options.concurrency,
        async (i) => {
          const { workerId, authToken } = credentials[i] as { workerId: string; authToken: string };
          const session = new IdleSession(i + 1, wsBase, workerId, authToken, options.heartbeatMs, `127.0.0.${1 + (i % addresses)}`, (error) => {
            lost ??= error;
            controller.abort(error);
          });
          sessions.push(session);
          await session.connect();
          if (++connected % 2000 === 0) say(`  ${connected} connected`);
        },
        controller.signal,
      );
      connectsPerSec = options.sessions / ((performance.now() - t0) / 1000);
      const health = await api2.get<{ workersOnline: number }>('/health');
      if (health.workersOnline !== options.sessions) throw new BenchError('sessions_missing', `${options.sessions} sessions were welcomed but the studio counts ${health.workersOnline} online`);
      // Steady state: every session completes one more heartbeat round trip after the last one
      // connected (the studio has then handled a heartbeat of each session, as it does every 5 s).
      say(`  ${Math.round(connectsPerSec)} sessions/s; waiting until each session's next heartbeat is acknowledged (every ${options.heartbeatMs} ms)…`);
      const cpu0 = processCpuSeconds(second.pid);
      const round0 = performance.now();
      await Promise.race([
        Promise.all(sessions.map((s) => s.nextAck())),
        new Promise((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true })),
      ]);
      if (lost) throw lost;
      held = residentKb(second.pid);
      const cpu1 = processCpuSeconds(second.pid);
      if (cpu0 !== undefined && cpu1 !== undefined) idleCpuCores = Math.round(((cpu1 - cpu0) / ((performance.now() - round0) / 1000)) * 100) / 100;
    } finally {
      api2.close();
    }
    const bench = residentKb('self');
    const kbPerSession = (held.rssKb - before.rssKb) / options.sessions;
    const result: SessionsResult = {
      sessions: options.sessions,
      kbPerSession: Math.round(kbPerSession * 10) / 10,
      studioRssMb: mb(held.rssKb),
      studioRssBeforeSessionsMb: mb(before.rssKb),
      studioPeakRssMb: mb(held.hwmKb),
      firstStudioRssStartMb: mb(firstStart.rssKb),
      firstStudioRssAfterCreateMb: mb(firstCreated.rssKb),
      kbPerSessionWithRows: Math.round(((held.rssKb - firstStart.rssKb) / options.sessions) * 10) / 10,
      createWorkersPerSec: Math.round(createWorkersPerSec),
      connectsPerSec: Math.round(connectsPerSec),
      benchRssMb: mb(bench.rssKb),
      localAddresses: addresses,
      heartbeatMs: options.heartbeatMs,
    };
    if (options.sessions < SESSIONS_TARGET) result.extrapolatedRssMbAtTarget = Math.round(((before.rssKb + kbPerSession * SESSIONS_TARGET) / 1024) * 10) / 10;
    if (openFiles !== undefined) result.openFilesLimit = openFiles;
    if (idleCpuCores !== undefined) result.studioIdleCpuCores = idleCpuCores;
    return result;
  } catch (error) {
    const failure = lost ?? error;
    if (failure instanceof BenchError && failure.code !== 'interrupted') {
      const output = current?.outputTail();
      if (output) failure.message += `\n--- studio output (last lines) ---\n${output}`;
    }
    throw failure;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    for (const session of sessions) session.close();
    await second?.stop();
    await first?.stop();
    if (first) {
      if (options.keep) process.stderr.write(`kept the studio data in ${first.dataDir}\n`);
      else rmSync(first.dataDir, { recursive: true, force: true });
    }
  }
}

const fmt = (v: number) => v.toLocaleString('en-US');

export function humanReport(r: SessionsResult): string {
  const lines = [
    `idle worker sessions held by the real studio process (hello → welcome, a heartbeat every ${r.heartbeatMs} ms; no jobs)`,
    ``,
    `figure                     measured          target        met`,
    `sessions held              ${fmt(r.sessions).padEnd(16)}  ${fmt(SESSIONS_TARGET).padEnd(12)}  ${r.sessions >= SESSIONS_TARGET ? 'yes' : 'NOT MEASURED AT THE TARGET N'}`,
    `studio memory per session  ${`${r.kbPerSession.toFixed(1)} KB`.padEnd(16)}  ${`<= ${KB_PER_SESSION_TARGET} KB`.padEnd(12)}  ${r.kbPerSession <= KB_PER_SESSION_TARGET ? 'yes' : 'NO'}`,
    ``,
    `studio RSS (VmRSS): ${r.studioRssBeforeSessionsMb} MB restarted with ${fmt(r.sessions)} workers in its database, ${r.studioRssMb} MB holding their sessions (peak ${r.studioPeakRssMb} MB)`,
    `the studio that created the workers: ${r.firstStudioRssStartMb} MB at start, ${r.firstStudioRssAfterCreateMb} MB after ${fmt(r.sessions)} POST /workers`,
    `  (sessions' RSS − that studio's start) / N, counting the rows and a restart: ${r.kbPerSessionWithRows.toFixed(1)} KB`,
    `the studio kept ${r.studioIdleCpuCores ?? '?'} cores busy answering the idle sessions' heartbeats`,
    `created ${fmt(r.createWorkersPerSec)} workers/s (one POST /workers each, bounded concurrency); connected ${fmt(r.connectsPerSec)} sessions/s`,
    `the bench process held the client ends in ${r.benchRssMb} MB${r.openFilesLimit === undefined ? '' : `; open-files limit ${fmt(r.openFilesLimit)}`}; ${r.localAddresses} source address(es)`,
  ];
  if (r.extrapolatedRssMbAtTarget !== undefined) {
    lines.push(`EXTRAPOLATED, not measured: ${fmt(SESSIONS_TARGET)} sessions at ${r.kbPerSession.toFixed(1)} KB each ≈ ${r.extrapolatedRssMbAtTarget} MB studio RSS`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  let options: SessionsOptions;
  try {
    options = parseSessionsArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(error instanceof BenchError && error.code === 'help' ? 0 : 2);
  }
  const code = await reexecWithRaisedLimit(options.sessions);
  if (code !== undefined) process.exit(code);
  const say = options.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
  try {
    const result = await runSessionsBench(options, say);
    process.stdout.write(`${options.json ? JSON.stringify(result) : humanReport(result)}\n`);
  } catch (error) {
    const code = error instanceof BenchError ? error.code : 'internal_error';
    process.stderr.write(`bench:sessions failed (${code}): ${(error as Error).message}\n`);
    if (!(error instanceof BenchError)) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
    process.exit(code === 'interrupted' ? 130 : 1);
  }
}

if (import.meta.main) await main();
