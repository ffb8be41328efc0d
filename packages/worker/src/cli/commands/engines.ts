import { ConfigError, readConfig, saveConfig } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE } from '../../platform/exit-codes.ts';
import { defaultDataDir } from '../../update/paths.ts';
import { installRuntime, onDemandRuntimes, runtimeState, type RuntimeProgress } from '../../update/runtimes.ts';
import { UpdateError } from '../../update/errors.ts';
import type { CliIo } from '../io.ts';
import { runningDaemonPid } from './running.ts';

export interface EnginesAddOptions {
  /** The per-user data dir (tests); default the updater's. */
  dataDir?: string;
  /** Where the progress bar goes: a terminal gets one redrawn line, anything else a line per quarter. */
  progress?: { write(text: string): void; isTTY?: boolean };
}

/**
 * `studio-worker engines add <engine>`: install the engine's runtime on demand (the operator's
 * consent is this command) and switch its `[engines.<name>]` table on in config.toml.
 */
export async function enginesAddCommand(configPath: string, engine: string, io: CliIo, options: EnginesAddOptions = {}): Promise<number> {
  const runtimes = onDemandRuntimes();
  if (!runtimes.includes(engine)) {
    io.err(`studio-worker engines add: "${engine}" has no runtime to install on demand (those that do: ${runtimes.join(', ')}); other engines are switched on in config.toml`);
    return EXIT_USAGE;
  }
  let loaded;
  try {
    loaded = await readConfig(configPath);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker engines add: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  const dataDir = options.dataDir ?? defaultDataDir();
  const before = runtimeState(engine, dataDir);
  if (!before.installed) io.out(`installing ${before.package} ${before.version} (the ${engine} engine's runtime) from the npm registry into ${before.dir}`);
  const bar = progressBar(options.progress ?? process.stderr);
  let result;
  try {
    result = await installRuntime(engine, { dataDir, onProgress: bar });
  } catch (error) {
    bar({ phase: 'done' });
    if (error instanceof UpdateError) {
      io.err(`studio-worker engines add: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  io.out(result.alreadyInstalled ? `${result.package} ${result.version} is already installed in ${result.dir}` : `installed ${result.package} ${result.version} in ${result.dir} (every package matched its pinned sha512)`);

  const tables = loaded.config.engines as Record<string, Record<string, unknown> | undefined>;
  const table = tables[engine];
  if (table && table.enabled !== false) {
    io.out(`[engines.${engine}] is already on in ${configPath}`);
    return EXIT_OK;
  }
  try {
    await saveConfig(configPath, { ...loaded.config, engines: { ...loaded.config.engines, [engine]: { ...table, enabled: true } } });
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker engines add: the runtime is installed, but ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  const pid = await runningDaemonPid(configPath);
  io.out(`switched [engines.${engine}] on in ${configPath}${pid ? `; restart the daemon (pid ${pid}) to offer it to the studio` : ''}`);
  return EXIT_OK;
}

/** `studio-worker engines list`: the on-demand runtimes and whether each is installed. */
export function enginesListCommand(io: CliIo, dataDir: string = defaultDataDir()): number {
  for (const engine of onDemandRuntimes()) {
    const state = runtimeState(engine, dataDir);
    io.out(`${engine}: ${state.package} ${state.version} ${state.installed ? `installed in ${state.dir}` : `not installed (studio-worker engines add ${engine})`}`);
  }
  return EXIT_OK;
}

const BAR_WIDTH = 30;

/** Draws install progress: `[######........] 7/17 packages`. */
function progressBar(stream: { write(text: string): void; isTTY?: boolean }): (progress: RuntimeProgress) => void {
  let lastQuarter = -1;
  let drawn = false;
  return (progress) => {
    if (progress.phase !== 'installing') {
      if (drawn && stream.isTTY) stream.write('\n');
      drawn = false;
      if (progress.phase === 'verifying') stream.write('verifying the installed packages against the pins\n');
      return;
    }
    const { fetched, total } = progress;
    const filled = total > 0 ? Math.round((fetched / total) * BAR_WIDTH) : 0;
    const line = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${fetched}/${total} packages${progress.package ? ` (${progress.package})` : ''}`;
    if (stream.isTTY) {
      stream.write(`\r${line}\u001b[K`);
      drawn = true;
      return;
    }
    const quarter = total > 0 ? Math.floor((fetched / total) * 4) : 0;
    if (quarter !== lastQuarter) {
      lastQuarter = quarter;
      stream.write(`${line}\n`);
    }
  };
}
