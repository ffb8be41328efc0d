import { availableParallelism, hostname, totalmem } from 'node:os';
import type { TaskKind, WorkerCapabilities } from '@studio-worker/protocol';
import type { ConfigStore } from '../config/index.ts';
import { commandHint } from '../config/invocation.ts';
import type { EngineRouter } from '../engines/router.ts';
import type { DaemonStatusWire } from '../local-api/index.ts';
import type { ReadyModels } from '../models/index.ts';
import type { LogRing } from '../observe/log-ring.ts';
import { AGENT_VERSION } from '../platform/version.ts';
import type { JobRunner, Outbox } from '../runner/index.ts';
import { buildCapabilities, type CapabilityInputs } from './capabilities.ts';
import type { FailureCooldown } from './failure-cooldown.ts';
import { describeGpuProcesses, type GpuBusyMonitor } from '../machine/gpu-busy.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { PresenceMonitor } from '../machine/presence.ts';
import type { StudioLoop } from './serve-loop.ts';
import type { DaemonState } from './state-file.ts';
import type { GpuInfo } from '../machine/vram.ts';

/**
 * What the daemon's outward answers are read from: the status (`GET /daemon/status`), state.json,
 * the capability snapshot and the reason offers are held back. The composition (composition.ts)
 * hands over its parts; these functions only read them.
 */
export interface StatusSources {
  configPath: string;
  store: ConfigStore;
  lifecycle: Lifecycle;
  gate: { readonly busy: boolean };
  router: EngineRouter;
  jobs: JobRunner;
  outbox: Outbox;
  studio: StudioLoop;
  cooldown: FailureCooldown;
  presence: PresenceMonitor;
  gpuBusy: GpuBusyMonitor;
  readyModels: ReadyModels;
  logRing: LogRing;
  gpus: GpuInfo[];
  vramTotalGb: number;
  /** models_root as the engines and the provisioner were built with (a change applies after a restart). */
  modelsRoot: string;
  startedAt: number;
  localApiUrl: string | undefined;
  installKind: DaemonStatusWire['startup']['installKind'];
  autostartInstalled: boolean;
}

/** `autoEnabled: false` while paused, shutting down, cooling down or sharing the GPU, so the studio does not offer. */
export function capabilitiesOf(s: StatusSources): WorkerCapabilities {
  const paused = s.lifecycle.paused || s.lifecycle.shuttingDown || s.cooldown.active || s.gpuBusy.others.length > 0;
  const engines = s.router.capabilities();
  const serves = (engine: string, kind: TaskKind) => (engines.supportedModelsPerKind[kind] ?? []).includes(`${engine}:*`);
  const inputs: CapabilityInputs = { config: s.store.current, engines, vramTotalGb: s.vramTotalGb, paused, readyModels: s.readyModels.byKind(serves) };
  const presence = s.presence.presence;
  if (presence !== undefined) inputs.userPresence = presence;
  return buildCapabilities(inputs);
}

/** Why offers are rejected right now (`reject{paused}` carries it), or null to take them. */
export function holdBackReason(s: StatusSources): string | null {
  if (s.lifecycle.shuttingDown) return 'worker shutting down';
  if (s.lifecycle.paused) return 'worker paused by operator';
  const coolingDown = s.cooldown.holdBack();
  if (coolingDown !== null) return coolingDown;
  const others = s.gpuBusy.others;
  if (others.length > 0) return `another program uses the GPU (${describeGpuProcesses(others)}; pause_when_gpu_busy)`;
  const config = s.store.current;
  if (config.onlyWhenIdle) {
    const presence = s.presence.snapshot();
    if (presence.presence === 'unknown') return `only_when_idle is on and this worker cannot tell whether its user is idle${presence.problem ? ` (${presence.problem})` : ''}`;
    if (presence.presence === 'active') return `only_when_idle is on and the user is active (idle ${presence.idleSecs ?? 0} s, idle_after_secs = ${config.idleAfterSecs})`;
  }
  return null;
}

/** What `GET /daemon/status` answers. Never a credential. */
export function statusOf(s: StatusSources): DaemonStatusWire {
  const config = s.store.current;
  const cooldown = s.cooldown.snapshot();
  const status: DaemonStatusWire = {
    version: AGENT_VERSION,
    pid: process.pid,
    configPath: s.configPath,
    apiBaseUrl: config.apiBaseUrl,
    paused: s.lifecycle.paused,
    shuttingDown: s.lifecycle.shuttingDown,
    busy: s.gate.busy,
    registered: Boolean(config.workerId && config.authToken),
    registration: s.studio.registration,
    session: s.studio.session,
    vramTotalGb: s.vramTotalGb,
    vramThresholdGb: config.vramThresholdGb,
    modelsRoot: s.modelsRoot,
    localApiUrl: s.localApiUrl ?? '',
    currentJobIds: s.jobs.currentJobIds(),
    waitingJobIds: s.jobs.waitingJobIds(),
    outboxEntries: s.outbox.size,
    engines: s.router.status(),
    logsSeq: s.logRing.seq,
    uptimeSecs: Math.round((Date.now() - s.startedAt) / 1000),
    machine: { name: hostname(), platform: `${process.platform} ${process.arch}`, nodeVersion: process.version, cpus: availableParallelism(), memoryGb: Math.round(totalmem() / 2 ** 30) },
    startup: { installKind: s.installKind, autostartInstalled: s.autostartInstalled, setupCommand: commandHint(s.configPath, 'setup') },
  };
  if (config.workerId) status.workerId = config.workerId;
  const lastHeartbeat = s.studio.lastHeartbeat;
  if (lastHeartbeat) status.lastHeartbeat = lastHeartbeat;
  if (cooldown.consecutiveFailures > 0 || cooldown.cooldownUntil) status.cooldown = cooldown;
  if (s.gpus.length > 0) status.gpus = s.gpus;
  if (config.onlyWhenIdle) status.presence = s.presence.snapshot();
  if (config.pauseWhenGpuBusy) status.gpuBusy = [...s.gpuBusy.others];
  return status;
}

/** `<config dir>/state.json`, for `studio-worker status` when the local API is not reachable. No secrets. */
export function stateOf(s: StatusSources): Omit<DaemonState, 'updatedAt'> {
  const workerId = s.store.current.workerId;
  return {
    pid: process.pid,
    version: AGENT_VERSION,
    registration: s.studio.registration,
    session: s.studio.session,
    ...(workerId ? { workerId } : {}),
    currentJobIds: s.jobs.currentJobIds(),
    waitingJobIds: s.jobs.waitingJobIds(),
    outboxEntries: s.outbox.size,
    paused: s.lifecycle.paused,
    ...s.cooldown.snapshot(),
    engineBusy: roundedBusy(s.jobs.engineBusy()),
    engines: s.router.status(),
    ...(s.localApiUrl ? { localApiUrl: s.localApiUrl } : {}),
  };
}

function roundedBusy(busy: { busyMs: number; sinceMs: number }): { busyMs: number; sinceMs: number } {
  return { busyMs: Math.round(busy.busyMs), sinceMs: Math.round(busy.sinceMs) };
}
