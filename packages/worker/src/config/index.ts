export { ConfigError, type ConfigErrorCode } from './errors.ts';
export { defaultConfig, describeConfigIssues, loadConfig, parseConfigText, readConfig, renderConfigToml, saveConfig, type ReadConfigResult } from './file.ts';
export { configDirOf, daemonPaths, defaultConfigPath, defaultModelsRoot, expandHome, npmStartConfigPath } from './paths.ts';
export {
  DEFAULT_API_BASE_URL,
  DEFAULT_AUTO_UPDATE_FEED,
  DEFAULT_VRAM_THRESHOLD_GB,
  SECRET_FIELDS,
  WorkerConfigSchema,
  type AdvancedTimings,
  type WorkerConfig,
} from './schema.ts';
export { ConfigStore, withoutFields } from './store.ts';
export { writeFileAtomic } from './atomic-file.ts';
