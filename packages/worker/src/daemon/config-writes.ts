import type { Logger } from '@studio-worker/log';
import { ConfigError, withoutFields, type ConfigStore } from '../config/index.ts';
import { applyConfigPatch, editableConfig } from '../config/editable.ts';
import { ApiError, type ConfigWriteResult } from '../local-api/index.ts';

/** `PUT /daemon/config`: validate, save through the ConfigStore, answer what needs a restart. */
export async function writeConfigPatch(store: ConfigStore, patch: unknown, log: Logger, onChanged: () => void): Promise<ConfigWriteResult> {
  const before = store.current;
  const result = applyConfigPatch(before, patch);
  if (!result.ok) throw new ApiError(400, 'invalid_config', result.message);
  if (result.changed.length > 0) {
    const changed = Object.fromEntries(result.changed.map((field) => [field, result.next[field]]));
    try {
      await store.update((current) => ({ ...current, ...changed }), `local API: ${result.changed.join(', ')}`);
    } catch (error) {
      // The store keeps a change in memory even when the save failed: put these fields back, so
      // the daemon goes on with what is on disk. Other fields (say, fresh credentials) stay.
      const previous = Object.fromEntries(result.changed.map((field) => [field, before[field]]));
      const unset = before.label === undefined && result.changed.includes('label') ? (['label'] as const) : [];
      await store.update((current) => withoutFields({ ...current, ...previous }, unset), 'local API: revert an unsaved change').catch(() => {});
      const why = error instanceof ConfigError ? error.message : error instanceof Error ? error.message : String(error);
      throw new ApiError(500, 'config_not_saved', `the settings were not saved: ${why}`);
    }
    log.info({ op: 'config', fields: result.changed, restartRequired: result.restartRequired }, `settings changed through the local API: ${result.changed.join(', ')}`);
    onChanged();
  }
  return { config: editableConfig(store.current), restartRequired: result.restartRequired };
}
