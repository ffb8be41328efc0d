import { WorkerConfigSchema, type WorkerConfig } from './index.ts';
import { ALLOWED_VALUES, camelToSnake } from './schema.ts';

/**
 * The settings `GET/PUT /daemon/config` reads and writes (original-spec §5.1 `EditableConfig`).
 * Credentials, the worker id, registration state, engines, ports and timings are not among them: they
 * are never accepted or returned over the local API.
 */
export const EDITABLE_FIELDS = [
  'apiBaseUrl',
  'label',
  'vramThresholdGb',
  'autoStart',
  'startMinimised',
  'autoUpdateEnabled',
  'autoUpdateIntervalSecs',
  'autoUpdateFeed',
  'autoUpdatePrerelease',
  'modelsRoot',
  'onlyWhenIdle',
  'prefetch',
  'failureCooldownSecs',
  'shutdownGraceSecs',
  'notifyOnComplete',
  'notifyOnFailure',
] as const satisfies readonly (keyof WorkerConfig)[];
export type EditableField = (typeof EDITABLE_FIELDS)[number];

/** Fields the running daemon reads only at start: a change needs a restart. */
export const RESTART_FIELDS: readonly EditableField[] = ['apiBaseUrl', 'modelsRoot'];

/** `label` is null when unset, so a form can show and clear it. */
export type EditableConfig = Omit<Pick<WorkerConfig, EditableField>, 'label'> & { label: string | null };

export function editableConfig(config: WorkerConfig): EditableConfig {
  const out: Record<string, unknown> = {};
  for (const field of EDITABLE_FIELDS) out[field] = config[field];
  out.label = config.label ?? null;
  return out as EditableConfig;
}

export type ConfigPatchResult =
  | { ok: true; next: WorkerConfig; changed: EditableField[]; restartRequired: EditableField[] }
  | { ok: false; message: string };

/**
 * Apply a partial EditableConfig to `current` and validate the result with the config schema. The
 * message of a refusal names the field (camelCase, as sent) and what it allows.
 */
export function applyConfigPatch(current: WorkerConfig, patch: unknown): ConfigPatchResult {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    return { ok: false, message: 'the body must be a JSON object of settings to change, e.g. {"vramThresholdGb": 8}' };
  }
  const editable = new Set<string>(EDITABLE_FIELDS);
  const unknown = Object.keys(patch).filter((key) => !editable.has(key));
  if (unknown.length > 0) {
    return { ok: false, message: `${unknown.map((key) => `"${key}"`).join(', ')} cannot be changed here; editable settings: ${EDITABLE_FIELDS.join(', ')}` };
  }
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    // An empty or null label clears it.
    if (key === 'label' && (value === null || value === '')) delete merged.label;
    else merged[key] = value;
  }
  const parsed = WorkerConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((issue) => {
      const field = String(issue.path[0] ?? '');
      const allowed = ALLOWED_VALUES[camelToSnake(field)];
      return allowed ? `${field} must be ${allowed}` : `${field || 'the settings'}: ${issue.message}`;
    });
    return { ok: false, message: problems.join('; ') };
  }
  const next = parsed.data;
  const changed = EDITABLE_FIELDS.filter((field) => JSON.stringify(next[field]) !== JSON.stringify(current[field]));
  return { ok: true, next, changed, restartRequired: changed.filter((field) => RESTART_FIELDS.includes(field)) };
}
