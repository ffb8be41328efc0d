// The package's module API (`import { readConfig } from 'studio-worker'`). Plain JavaScript, like the
// bin, and the same rule: the TypeScript sources where they are (a checkout), else the bundle in
// dist/ (a published package: Node does not strip types under node_modules).
import { existsSync } from 'node:fs';

const api = await import(existsSync(new URL('./src/index.ts', import.meta.url)) ? './src/index.ts' : './dist/index.js');

// The names of src/index.ts (test/release/build.test.ts checks that the two lists agree).
export const {
  defaultConfigPath,
  loadConfig,
  saveConfig,
  ConfigError,
  daemonPaths,
  defaultConfig,
  readConfig,
  renderConfigToml,
  Daemon,
  runDaemon,
  JobGate,
  readDaemonState,
  AGENT_VERSION,
  USER_AGENT,
  EXIT_DISPLACED,
  EXIT_ERROR,
  EXIT_LOCKED,
  EXIT_OK,
  EXIT_USAGE,
  runCli,
} = api;
