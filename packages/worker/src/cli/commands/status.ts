import { httpApiBase } from '@studio-worker/protocol';
import { ConfigError, readConfig } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import type { DaemonState } from '../../daemon/state-file.ts';
import type { EngineStatus } from '../../engines/router.ts';
import { DaemonUnreachableError, type DaemonStatusWire } from '../../local-api/index.ts';
import { describeRegistration, type RegistrationState } from '../../registration/index.ts';
import { describeSession, type SessionState } from '../../session/state.ts';
import type { CliIo } from '../io.ts';
import { BUNDLED } from '../../package-layout.ts';
import { defaultDataDir } from '../../update/paths.ts';
import { onDemandRuntimes, runtimeState } from '../../update/runtimes.ts';
import { commandHint, type ConfigSource } from '../../config/invocation.ts';

/** What `status` says about where the config came from. */
const CONFIG_SOURCE_NOTE: Record<ConfigSource, string> = {
  flag: '',
  'npm-start': " (npm start's local worker: the default in this checkout; --config picks another)",
  user: '',
};
import { findDaemon } from './daemon-via-api.ts';
import { runningDaemonState } from './running.ts';

/** What `status` shows of a running daemon, from its local API or (failing that) its state.json. */
interface DaemonView {
  pid: number;
  version: string;
  paused: boolean;
  registration: RegistrationState;
  session: SessionState;
  lastHeartbeat?: string;
  currentJobIds: string[];
  waitingJobIds: string[];
  outboxEntries: number;
  engines: EngineStatus[];
  consecutiveFailures?: number;
  cooldownUntil?: string;
  cooldownAfterFailures?: number;
  lastFailure?: string;
  gpus?: DaemonStatusWire['gpus'];
  presence?: DaemonStatusWire['presence'];
  gpuBusy?: DaemonStatusWire['gpuBusy'];
  localApiUrl?: string;
  /** Why the local API could not be asked, when the view comes from state.json. */
  apiProblem?: string;
}

/**
 * `studio-worker status`: the config, the registration, and what the running daemon reports — asked
 * over its local API, else read from its state.json; without a daemon, what the config says.
 */
export async function statusCommand(configPath: string, io: CliIo, source: ConfigSource = 'flag'): Promise<number> {
  let loaded;
  try {
    loaded = await readConfig(configPath);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker status: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  const { config, exists } = loaded;
  const daemon = await daemonView(configPath);
  const registration: RegistrationState =
    daemon?.registration ??
    (config.workerId && config.authToken
      ? { state: 'approved' }
      : config.registrationRequestId
        ? { state: 'pending', requestId: config.registrationRequestId }
        : { state: 'pristine' });

  const rows: Array<[string, string]> = [
    ['config', `${configPath}${CONFIG_SOURCE_NOTE[source]}${exists ? '' : ' (not created yet; the defaults apply)'}`],
    ['studio', httpApiBase(config.apiBaseUrl)],
    ['registration', describeRegistration(registration, config.workerId, commandHint(configPath, 'register --reset'))],
  ];
  if (daemon) {
    rows.push(['daemon', `running (pid ${daemon.pid}, version ${daemon.version}${daemon.paused ? `, paused: takes no studio jobs until \`${commandHint(configPath, 'resume')}\`` : ''})`]);
    if (daemon.localApiUrl) rows.push(['local api', daemon.localApiUrl]);
    if (daemon.apiProblem) rows.push(['local api', `${daemon.apiProblem} (the rows below come from state.json)`]);
    rows.push(['session', `${describeSession(daemon.session)}${daemon.lastHeartbeat ? ` (last heartbeat ${clockTime(new Date(daemon.lastHeartbeat), new Date())})` : ''}`]);
    rows.push(['current job', describeJobs(daemon)]);
    const failures = describeFailures(daemon, new Date());
    if (failures) rows.push(failures);
    if (daemon.outboxEntries > 0) rows.push(['outbox', `${daemon.outboxEntries} result(s) waiting for the studio`]);
    const engines = daemon.engines.map((engine) =>
      engine.available ? `${engine.engine}: available` : `${engine.engine}: unavailable — ${engine.reason ?? 'no reason given'}`,
    );
    rows.push(['engines', engines.length > 0 ? engines.join('; ') : 'none enabled (enable [engines.synthetic] or configure a real engine)']);
    if (daemon.gpus !== undefined) rows.push(['gpus', daemon.gpus.map((gpu) => `${gpu.name} ${gpu.vramGb} GB (${gpu.source})`).join('; ')]);
    const presence = daemon.presence;
    if (presence !== undefined) {
      const detail = presence.presence === 'unknown' ? (presence.problem ?? 'no probe answered') : `idle ${presence.idleSecs ?? 0} s, from ${presence.source ?? '?'}`;
      rows.push(['user', `${presence.presence} (${detail}; only_when_idle)`]);
    }
    if (daemon.gpuBusy !== undefined && daemon.gpuBusy.length > 0) rows.push(['gpu busy', `${daemon.gpuBusy.map((p) => `${p.name} (pid ${p.pid})`).join(', ')}: taking no new jobs`]);
  } else {
    rows.push(['daemon', `not running (start it with \`${commandHint(configPath, 'run')}\`); the rows above and below come from config.toml`]);
  }
  const missing = missingRuntimes(config.engines as Record<string, { enabled?: unknown } | undefined>);
  if (missing.length > 0) rows.push(['runtimes', missing.join('; ')]);
  rows.push(['vram threshold', `${config.vramThresholdGb} GB`]);
  rows.push(['models root', config.modelsRoot]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  for (const [label, value] of rows) io.out(`${`${label}:`.padEnd(width)}${value}`);
  return EXIT_OK;
}

/**
 * Engines switched on in config.toml whose runtime is installed on demand and is not there yet.
 * Only for an installed worker: a checkout has the runtimes as devDependencies.
 */
function missingRuntimes(tables: Record<string, { enabled?: unknown } | undefined>): string[] {
  if (!BUNDLED) return [];
  const dataDir = defaultDataDir();
  return onDemandRuntimes()
    .filter((engine) => tables[engine] !== undefined && tables[engine]?.enabled !== false)
    .map((engine) => runtimeState(engine, dataDir))
    .filter((state) => !state.installed)
    .map((state) => `${state.engine}: ${state.package} ${state.version} is not installed; run \`studio-worker engines add ${state.engine}\``);
}

async function daemonView(configPath: string): Promise<DaemonView | null> {
  let apiProblem: string | undefined;
  const client = await findDaemon(configPath);
  if (client) {
    try {
      const answer = await client.request<DaemonStatusWire>('GET', '/daemon/status');
      if (answer.status === 200) return fromApi(answer.body);
      apiProblem = `answered ${answer.status}`;
    } catch (error) {
      if (!(error instanceof DaemonUnreachableError)) throw error;
      apiProblem = error.message;
    }
  }
  const state = await runningDaemonState(configPath);
  if (!state) return null;
  return { ...fromState(state), ...(apiProblem ? { apiProblem } : {}) };
}

function fromApi(status: DaemonStatusWire): DaemonView {
  const view: DaemonView = {
    pid: status.pid,
    version: status.version,
    paused: status.paused,
    registration: status.registration,
    session: status.session,
    currentJobIds: status.currentJobIds,
    waitingJobIds: status.waitingJobIds,
    outboxEntries: status.outboxEntries,
    engines: status.engines,
    localApiUrl: status.localApiUrl,
    ...status.cooldown,
  };
  if (status.lastHeartbeat) view.lastHeartbeat = status.lastHeartbeat;
  if (status.gpus) view.gpus = status.gpus;
  if (status.presence) view.presence = status.presence;
  if (status.gpuBusy) view.gpuBusy = status.gpuBusy;
  return view;
}

function fromState(state: DaemonState): DaemonView {
  const view: DaemonView = {
    pid: state.pid,
    version: state.version,
    paused: state.paused,
    registration: state.registration,
    session: state.session,
    currentJobIds: state.currentJobIds,
    waitingJobIds: state.waitingJobIds ?? [],
    outboxEntries: state.outboxEntries,
    engines: state.engines,
  };
  if (state.consecutiveFailures !== undefined) view.consecutiveFailures = state.consecutiveFailures;
  if (state.cooldownUntil !== undefined) view.cooldownUntil = state.cooldownUntil;
  if (state.cooldownAfterFailures !== undefined) view.cooldownAfterFailures = state.cooldownAfterFailures;
  if (state.lastFailure !== undefined) view.lastFailure = state.lastFailure;
  return view;
}

function describeJobs(view: DaemonView): string {
  const waiting = new Set(view.waitingJobIds);
  const running = view.currentJobIds.filter((id) => !waiting.has(id));
  if (running.length === 0 && waiting.size === 0) return 'none';
  const parts = [running.length > 0 ? running.join(', ') : 'none running'];
  if (waiting.size > 0) parts.push(`next: ${[...waiting].join(', ')} (prefetched, waiting for the engine)`);
  return parts.join('; ');
}

/** The failure cooldown, or a failure streak that has not reached it yet. */
function describeFailures(view: DaemonView, now: Date): [string, string] | null {
  const lastError = view.lastFailure ? `; last error: ${view.lastFailure}` : '';
  if (view.cooldownUntil && Date.parse(view.cooldownUntil) > now.getTime()) {
    const count = view.cooldownAfterFailures ?? view.consecutiveFailures ?? 0;
    return ['taking work', `paused after ${count} failed jobs in a row until ${clockTime(new Date(view.cooldownUntil), now)}${lastError}`];
  }
  const streak = view.consecutiveFailures ?? 0;
  if (streak > 0) return ['failures', `${streak} failed job${streak === 1 ? '' : 's'} in a row${lastError}`];
  return null;
}

/** "12:34:56" in local time, with the date in front when it is not today. */
function clockTime(at: Date, now: Date): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
  if (at.toDateString() === now.toDateString()) return time;
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${time}`;
}
