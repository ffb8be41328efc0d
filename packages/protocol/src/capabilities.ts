import { z } from 'zod';
import { optional } from './optional.ts';
import { TaskKind, TASK_KINDS } from './task.ts';

/**
 * Protocol extensions a peer understands. A studio sends a frame or field beyond the original's
 * protocol only to a worker that listed the matching feature, and a worker does the same with the
 * features in `welcome.protocolFeatures`.
 * - attempt:  results and answers carry `attempt`; stale ones are refused with `stale_attempt`.
 * - progress: the worker may send `progress` frames.
 * - cancel:   the studio may send `cancel` frames.
 * - resume:   `hello`/`heartbeat` carry `inFlight`, and in-flight jobs survive a reconnect.
 * - prefetch: the worker takes one extra offer while a job runs (`prefetchSlots`).
 * - extended-offers: the worker reads offers beyond the original's closed types: engines and file
 *   roles the original does not know, `cliDefaults` without the four numbers or with extra keys.
 * - split-text-encoders: the worker knows the file roles `clip-l`, `clip-g`, `t5xxl`; a job whose
 *   model source has one is offered only to such a worker (see `featuresNeededBy`).
 * - preview: progress frames may carry a small `preview` image (≤ 64 KB, ≤ 1 per second per job).
 * A peer without `extended-offers` (the original) gets only jobs its parser can read, with the four
 * cliDefaults numbers filled in; see docs/protocol.md "Which peer gets what".
 */
export const PROTOCOL_FEATURES = ['attempt', 'progress', 'cancel', 'resume', 'prefetch', 'extended-offers', 'split-text-encoders', 'preview'] as const;
export type ProtocolFeature = (typeof PROTOCOL_FEATURES)[number];

export const WorkerCapabilities = z.object({
  machineName: z.string(),
  username: z.string(),
  agentVersion: z.string(),
  /** "multi" for a worker that routes to several engines. */
  engine: z.string(),
  vramTotalGb: z.number().nonnegative(),
  vramThresholdGb: z.number().nonnegative(),
  /** false while the operator paused the worker. */
  autoEnabled: z.boolean(),
  autoStart: z.boolean(),
  autoUpdate: optional(z.boolean()),
  startMinimised: optional(z.boolean()),
  onlyWhenIdle: optional(z.boolean()),
  userPresence: optional(z.enum(['idle', 'active'])),
  /** Flat, sorted, deduplicated; informational (e.g. "synthetic-image", "sd-cpp:*"). */
  supportedModels: z.array(z.string()).default([]),
  taskKinds: z.array(TaskKind).default([]),
  /** kind → model ids. An entry "<engine>:*" means that engine serves any model of the kind. */
  supportedModelsPerKind: z.partialRecord(TaskKind, z.array(z.string())).default({}),
  // ---- extensions (ignored by the original studio) ----
  /** Features this worker understands; see PROTOCOL_FEATURES. Unknown names are kept and ignored. */
  protocolFeatures: optional(z.array(z.string())),
  /** Extra offers the worker takes while one job runs (0 or 1). */
  prefetchSlots: optional(z.number().int().min(0).max(4)),
  /** Engines this worker knows but cannot run right now, and why (shown to the operator). */
  unavailableEngines: optional(z.array(z.object({ engine: z.string(), reason: z.string() }))),
});
export type WorkerCapabilities = z.infer<typeof WorkerCapabilities>;

/** File roles that only a worker announcing 'split-text-encoders' understands. */
export const SPLIT_TEXT_ENCODER_ROLES: readonly string[] = ['clip-l', 'clip-g', 't5xxl'];

/**
 * Protocol features a worker must announce to be offered a job for this model source: an original
 * worker would refuse a file role it does not know as a malformed frame.
 */
export function featuresNeededBy(source: { files?: readonly { role: string }[] | undefined }): ProtocolFeature[] {
  return (source.files ?? []).some((file) => SPLIT_TEXT_ENCODER_ROLES.includes(file.role)) ? ['split-text-encoders'] : [];
}

/** True when the peer listed the feature. */
export function hasFeature(caps: Pick<WorkerCapabilities, 'protocolFeatures'> | undefined, feature: ProtocolFeature): boolean {
  return caps?.protocolFeatures?.includes(feature) ?? false;
}

/**
 * The (engine, kind) pairs a worker serves, read from `supportedModelsPerKind`: "<engine>:*" names an
 * engine; the synthetic engine's models ("synthetic", "synthetic-<kind>") name `synthetic`. This is
 * what strict routing matches a job's `ModelSource.engine` against.
 */
export function enginesByKind(caps: Pick<WorkerCapabilities, 'supportedModelsPerKind' | 'taskKinds'>): Map<TaskKind, Set<string>> {
  const out = new Map<TaskKind, Set<string>>();
  for (const kind of TASK_KINDS) {
    if (!caps.taskKinds.includes(kind)) continue;
    const engines = new Set<string>();
    for (const model of caps.supportedModelsPerKind[kind] ?? []) {
      if (model.endsWith(':*')) engines.add(model.slice(0, -2));
      else if (model === 'synthetic' || model.startsWith('synthetic-')) engines.add('synthetic');
    }
    if (engines.size > 0) out.set(kind, engines);
  }
  return out;
}
