import { mkdir } from 'node:fs/promises';
import type { DestinationStream } from 'pino';
import {
  consoleDestination,
  createLogRoot,
  DeferredDestination,
  fanOut,
  RotatingFileDestination,
  silentLogger,
  type Logger,
} from '@studio-worker/log';
import { ConfigError, daemonPaths, readConfig, type WorkerConfig } from '../config/index.ts';
import type { Engine } from '../engines/engine.ts';
import { buildEngines } from '../engines/roster.ts';
import { daemonLogPath } from '../observe/log-file.ts';
import { LogRing } from '../observe/log-ring.ts';
import { isUntaggedDebugLine, LogTap } from '../observe/log-tap.ts';
import { EXIT_ERROR, EXIT_LOCKED } from '../platform/exit-codes.ts';
import { DaemonLock, LockHeldError } from '../platform/lock.ts';
import { USER_AGENT } from '../platform/version.ts';
import { createShippingDestination, LogShipQueue } from '../session/index.ts';
import { Daemon } from './composition.ts';
import { Lifecycle } from './lifecycle.ts';
import { watchParentFromEnv } from './parent-watch.ts';

export { Daemon } from './composition.ts';

export interface DaemonOptions {
  configPath: string;
  /** Where log lines go (default: stdout). */
  logDestination?: DestinationStream;
  /** Where fatal start-up messages go (default: stderr). */
  printError?: (message: string) => void;
  /** Install SIGTERM/SIGINT handlers (default true). */
  handleSignals?: boolean;
  /** The engines to run (default: those config.toml enables; see `configuredEngines`). */
  engines?: (config: WorkerConfig) => Engine[] | Promise<Engine[]>;
  /** Where the web UI's files are (default: packages/worker/src/ui). */
  uiDir?: string;
}

/**
 * `studio-worker run`: config → lock → VRAM → engines → registration → session, until SIGTERM/SIGINT.
 * Resolves with the process exit code.
 */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const printError = options.printError ?? ((message: string) => process.stderr.write(`${message}\n`));
  // Signals are handled from the first moment, so one that arrives while the daemon starts is
  // honoured (a graceful stop once it runs) instead of killing it half-way.
  const lifecycle = new Lifecycle();
  let daemon: Daemon | undefined;
  let lock: DaemonLock | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (daemon) return daemon.onSignal(signal);
    // Still starting: the first signal is honoured once the daemon runs; an impatient second exits.
    if (lifecycle.signal(signal) !== 'exit-now') return;
    lock?.release();
    process.exit(EXIT_ERROR);
  };
  if (options.handleSignals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  // Every log line goes to stdout, the log file (once the lock is ours), the in-process tap (the
  // local API's log ring and per-job logs) and, at info and up, the studio's log shipping queue.
  const shipQueue = new LogShipQueue();
  const tap = new LogTap(isUntaggedDebugLine);
  const logRing = new LogRing();
  tap.subscribe((record) => logRing.push(record));
  const logFile = new DeferredDestination();
  const logs = createLogRoot({
    app: 'studio-worker',
    destination: createShippingDestination(fanOut(options.logDestination ?? consoleDestination(), logFile, tap), shipQueue),
  });
  const log = logs.child('daemon');

  let loaded;
  try {
    loaded = await readConfig(options.configPath);
  } catch (error) {
    if (error instanceof ConfigError) {
      printError(`studio-worker: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  for (const warning of loaded.warnings) logs.child('config').warn({ op: 'config' }, warning);

  const paths = daemonPaths(options.configPath);
  try {
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    lock = await DaemonLock.acquire(
      paths.lock,
      (pid) => `another studio-worker daemon (pid ${pid}) is already running for the config dir ${paths.dir}; stop it first (kill ${pid}) or start this one with another --config`,
    );
  } catch (error) {
    // The log file belongs to the daemon that holds the lock.
    logFile.discard();
    if (error instanceof LockHeldError) {
      log.warn({ op: 'daemon_lock', pid: error.pid, dir: paths.dir }, error.message);
      printError(`studio-worker: ${error.message}`);
      return EXIT_LOCKED;
    }
    printError(`studio-worker: cannot use the config dir ${paths.dir}: ${error instanceof Error ? error.message : String(error)}; check that it is writable`);
    return EXIT_ERROR;
  }

  const file = openLogFile(daemonLogPath(options.configPath), logFile, log);

  try {
    daemon = await Daemon.start({
      logs,
      shipQueue,
      tap,
      logRing,
      uiDir: options.uiDir,
      lock,
      configPath: options.configPath,
      config: loaded.config,
      configExists: loaded.exists,
      engines: options.engines ?? ((config) => configuredEngines(config, logs.child('engine'))),
      lifecycle,
    });
    const pendingStop = lifecycle.pendingStop;
    if (pendingStop) void daemon.shutdown(pendingStop);
    const running = daemon;
    const stopParentWatch = watchParentFromEnv((parent) => {
      log.warn({ op: 'shutdown', parent }, `the process that started this daemon (pid ${parent}) is gone; stopping`);
      void running.shutdown('parent_gone');
    });
    const stopped = await daemon.finished;
    stopParentWatch?.();
    // An update in progress: the successor decides the exit (0 once it is healthy, else the rollback's).
    const handoff = daemon.updater.handoff;
    const code = handoff ? await handoff : stopped;
    file?.close();
    return code;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error({ op: 'daemon', err: error }, `daemon failed to start: ${message}`);
    printError(`studio-worker: the daemon failed to start: ${message}`);
    file?.close();
    lock.release();
    return EXIT_ERROR;
  }
}

/**
 * The rotating log file, fed what was logged before the lock was taken. A file that cannot be
 * opened leaves logging on stdout only (said once); a later write problem is said once per kind.
 */
function openLogFile(path: string, deferred: DeferredDestination, log: Logger): RotatingFileDestination | null {
  try {
    const file = new RotatingFileDestination({
      path,
      // Reported on the next turn: logging from inside a log write would re-enter pino.
      onError: (error) => setImmediate(() => log.warn({ op: 'log_file', path, err: error.message }, `cannot write the log file ${path}: ${error.message}; logging to stdout only until it works again`)),
    });
    deferred.attach(file);
    return file;
  } catch (error) {
    deferred.discard();
    log.warn({ op: 'log_file', path, err: (error as Error).message }, `cannot open the log file ${path}: ${(error as Error).message}; logging to stdout only`);
    return null;
  }
}

/** The engines config.toml enables. */
export function configuredEngines(config: WorkerConfig, log: Logger = silentLogger): Promise<Engine[]> {
  return buildEngines(config.engines, { log, modelsRoot: config.modelsRoot, userAgent: USER_AGENT });
}
