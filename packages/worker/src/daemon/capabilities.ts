import { hostname, userInfo } from 'node:os';
import type { ProtocolFeature, TaskKind, WorkerCapabilities } from '@studio-worker/protocol';
import type { WorkerConfig } from '../config/index.ts';
import type { RouterCapabilities } from '../engines/router.ts';
import { AGENT_VERSION } from '../platform/version.ts';

/** Protocol extensions this worker always understands; `prefetch` is added when config.toml turns it on. */
export const WORKER_PROTOCOL_FEATURES: readonly ProtocolFeature[] = ['attempt', 'progress', 'cancel', 'resume', 'extended-offers', 'split-text-encoders', 'preview'];
/** Offers held beyond the running one when prefetch is on. */
export const PREFETCH_SLOTS = 1;

export interface CapabilityInputs {
  config: WorkerConfig;
  engines: RouterCapabilities;
  vramTotalGb: number;
  /** Operator pause, shutdown or the failure cooldown: `autoEnabled: false`. */
  paused: boolean;
  /** Models whose files are downloaded and verified, per kind (advertised next to the engines). */
  readyModels?: Partial<Record<TaskKind, readonly string[]>>;
  /** With only_when_idle: the presence probe's answer; omitted while unknown (original-spec §3.15). */
  userPresence?: 'idle' | 'active';
}

/** The capability snapshot sent in hello, every heartbeat and the registration request. */
export function buildCapabilities({ config, engines, vramTotalGb, paused, readyModels, userPresence }: CapabilityInputs): WorkerCapabilities {
  const perKind: WorkerCapabilities['supportedModelsPerKind'] = {};
  for (const kind of engines.taskKinds) perKind[kind] = sortedUnion(engines.supportedModelsPerKind[kind] ?? [], readyModels?.[kind] ?? []);
  const capabilities: WorkerCapabilities = {
    machineName: machineName(),
    username: userName(),
    agentVersion: AGENT_VERSION,
    engine: 'multi',
    vramTotalGb,
    vramThresholdGb: config.vramThresholdGb,
    autoEnabled: !paused,
    autoStart: config.autoStart,
    autoUpdate: config.autoUpdateEnabled,
    startMinimised: config.startMinimised,
    onlyWhenIdle: config.onlyWhenIdle,
    supportedModels: sortedUnion(engines.supportedModels, Object.values(perKind).flat()),
    taskKinds: engines.taskKinds,
    supportedModelsPerKind: perKind,
    protocolFeatures: [...WORKER_PROTOCOL_FEATURES],
  };
  // Announced in hello whatever the studio says in welcome (welcome comes later); a studio that does
  // not know the feature ignores it, and this worker prefetches only on a link whose welcome lists it.
  if (config.prefetch) {
    capabilities.protocolFeatures = [...WORKER_PROTOCOL_FEATURES, 'prefetch'];
    capabilities.prefetchSlots = PREFETCH_SLOTS;
  }
  if (engines.unavailableEngines && engines.unavailableEngines.length > 0) capabilities.unavailableEngines = engines.unavailableEngines;
  if (config.onlyWhenIdle && userPresence !== undefined) capabilities.userPresence = userPresence;
  return capabilities;
}

function machineName(): string {
  try {
    return hostname() || 'unknown-host';
  } catch {
    return 'unknown-host';
  }
}

function userName(): string {
  try {
    return userInfo().username || 'unknown-user';
  } catch {
    return 'unknown-user';
  }
}

function sortedUnion(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}
