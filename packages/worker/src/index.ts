/**
 * The studio-worker package: config helpers (used by the all-in-one launcher to write a
 * pre-approved config for the local worker) and the daemon entry point.
 */
export { defaultConfigPath, loadConfig, saveConfig, ConfigError, type WorkerConfig } from './config/index.ts';
export { daemonPaths, defaultConfig, readConfig, renderConfigToml } from './config/index.ts';
export { Daemon, runDaemon, type DaemonOptions } from './daemon/daemon.ts';
export { JobGate, type Release } from './platform/job-gate.ts';
export { readDaemonState, type DaemonState } from './daemon/state-file.ts';
export { AGENT_VERSION, USER_AGENT } from './platform/version.ts';
export { EXIT_DISPLACED, EXIT_ERROR, EXIT_LOCKED, EXIT_OK, EXIT_USAGE } from './platform/exit-codes.ts';
export { runCli } from './cli/program.ts';
