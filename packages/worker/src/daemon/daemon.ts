import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { availableParallelism, hostname, totalmem } from 'node:os';
import type { DestinationStream } from 'pino';
import {
  consoleDestination,
  createLogRoot,
  DeferredDestination,
  fanOut,
  RotatingFileDestination,
  silentLogger,
  type Logger,
  type LogRoot,
} from '@studio-worker/log';
import type { TaskKind, WorkerCapabilities } from '@studio-worker/protocol';
import { ConfigError, ConfigStore, daemonPaths, readConfig, saveConfig, withoutFields, type WorkerConfig } from '../config/index.ts';
import type { Engine } from '../engines/engine.ts';
import { EngineRouter } from '../engines/router.ts';
import { buildEngines } from '../engines/roster.ts';
import { IdleMemoryReducer } from './idle-memory.ts';
import {
  ApiError,
  chooseLocalApiPort,
  discoveryPath,
  LocalApiServer,
  localApiRoutes,
  LocalJobs,
  LocalModels,
  removeDiscovery,
  StaticUi,
  writeDiscovery,
  type ConfigWriteResult,
  type DaemonStatusWire,
  type HealthWire,
  type LocalApiContext,
} from '../local-api/index.ts';
import { ModelCatalog, ModelProvisioner, ReadyModels } from '../models/index.ts';
import { JobNotifications, Notifier } from '../ops/notify.ts';
import { autoUpdateSettings, checkForUpdate, createDaemonUpdater, detectInstallKind, OWN_PACKAGE_ROOT, recordStartup, updatePaths, defaultDataDir, type AutoUpdater, type UpdateCheck } from '../update/index.ts';
import { Registrar } from '../registration/index.ts';
import {
  createShippingDestination,
  LogShipQueue,
  Outbox,
  superviseSessions,
  untilAborted,
  WorkerRuntime,
  type SessionState,
} from '../session/index.ts';
import { buildCapabilities } from './capabilities.ts';
import { countingFetch } from './counting-fetch.ts';
import { applyConfigPatch, editableConfig, type EditableConfig } from './editable-config.ts';
import { EXIT_ERROR, EXIT_LOCKED, EXIT_OK } from './exit-codes.ts';
import { FailureCooldown } from './failure-cooldown.ts';
import { freeBytesAt } from './health.ts';
import { JobBoard } from './job-board.ts';
import { JobGate } from './job-gate.ts';
import { DaemonLock, LockHeldError } from './lock.ts';
import { daemonLogPath } from './log-file.ts';
import { LogRing } from './log-ring.ts';
import { watchParentFromEnv } from './parent-watch.ts';
import { isUntaggedDebugLine, LogTap } from './log-tap.ts';
import { ModelDownloads } from './model-downloads.ts';
import { StateFile } from './state-file.ts';
import { AGENT_VERSION, USER_AGENT } from './version.ts';
import { detectVramGb } from './vram.ts';
import { WorkerMetrics } from './worker-metrics.ts';

export interface DaemonOptions {
  configPath: string;
  /** Where log lines go (default: stdout). */
  logDestination?: DestinationStream;
  /** Where fatal start-up messages go (default: stderr). */
  printError?: (message: string) => void;
  /** Install SIGTERM/SIGINT handlers (default true). */
  handleSignals?: boolean;
  /** The engines to run (default: those config.toml enables; see `configuredEngines`). */
  engines?: (config: WorkerConfig) => Engine[];
  /** Where the web UI's files are (default: packages/worker/src/ui). */
  uiDir?: string;
}

/** What `register --reset` clears; a registration reset through the local API clears the same. */
const REGISTRATION_FIELDS = ['workerId', 'authToken', 'registrationRequestId', 'registrationSecret', 'installId'] as const;

/**
 * A repeat signal within this window is the same request arriving twice (Ctrl-C reaches the whole
 * process group, and a launcher forwards its own SIGTERM a moment later), not an impatient second one.
 */
const REPEAT_SIGNAL_WINDOW_MS = 500;
/** How long shutdown waits for the studio to acknowledge what is left in the outbox. */
const SHUTDOWN_FLUSH_MS = 3_000;
/** Engines are probed again this often, so one that comes up (or goes away) is advertised correctly. */
const ENGINE_REFRESH_MS = 30_000;

/**
 * `studio-worker run`: config → lock → VRAM → engines → registration → session, until SIGTERM/SIGINT.
 * Resolves with the process exit code.
 */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const printError = options.printError ?? ((message: string) => process.stderr.write(`${message}\n`));
  // Signals are handled from the first moment, so one that arrives while the daemon starts is
  // honoured (a graceful stop once it runs) instead of killing it half-way.
  let daemon: Daemon | undefined;
  let lock: DaemonLock | undefined;
  let earlySignal: NodeJS.Signals | undefined;
  let earlySignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (daemon) return daemon.onSignal(signal);
    if (earlySignal) {
      if (performance.now() - earlySignalAt < REPEAT_SIGNAL_WINDOW_MS) return;
      lock?.release();
      process.exit(EXIT_ERROR);
    }
    earlySignal = signal;
    earlySignalAt = performance.now();
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
    });
    if (earlySignal) void daemon.shutdown(earlySignal);
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

interface DaemonParts {
  logs: LogRoot;
  shipQueue: LogShipQueue;
  /** Parsed log lines, for the per-job logs. */
  tap: LogTap;
  logRing: LogRing;
  uiDir?: string;
  lock: DaemonLock;
  configPath: string;
  config: WorkerConfig;
  configExists: boolean;
  engines: (config: WorkerConfig) => Engine[];
}

/**
 * The running daemon. Its job gate and pause switch are public so that the local API and the
 * auto-updater can share them.
 */
export class Daemon {
  readonly gate = new JobGate();
  readonly store: ConfigStore;
  readonly router: EngineRouter;
  readonly runtime: WorkerRuntime;
  /** Resolves with the exit code once the daemon has stopped. */
  readonly finished: Promise<number>;
  /** Models met in offers (and added locally), with which of them are on disk and verified. */
  readonly catalog: ModelCatalog;
  /** Running and recent jobs (studio and local), with their logs and thumbnails. */
  readonly jobs: JobBoard;
  readonly metrics = new WorkerMetrics();
  /** Installs newer versions between jobs (not started for a git checkout). */
  readonly updater: AutoUpdater;
  readonly #parts: DaemonParts;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #stateFile: StateFile;
  readonly #vramTotalGb: number;
  readonly #cooldown: FailureCooldown;
  readonly #provisioner: ModelProvisioner;
  readonly #downloads: ModelDownloads;
  readonly #readyModels: ReadyModels;
  readonly #localJobs: LocalJobs;
  readonly #outbox: Outbox;
  /** models_root as the engines and the provisioner were built with (a change applies after a restart). */
  readonly #modelsRoot: string;
  readonly #startedAt = Date.now();
  #registrar: Registrar;
  /** Aborted by a registration reset, to wake the registration loop from its wait after a rejection. */
  #registrationRestart = new AbortController();
  #session: SessionState = { state: 'waiting_for_approval' };
  #lastHeartbeat: string | undefined;
  #localApi: LocalApiServer | null = null;
  #paused = false;
  #shuttingDown = false;
  #shutdownStartedAt = 0;
  #resolveFinished!: (code: number) => void;
  #mainLoop: Promise<void> = Promise.resolve();

  private constructor(parts: DaemonParts, store: ConfigStore, router: EngineRouter, outbox: Outbox, vramTotalGb: number, catalog: ModelCatalog) {
    this.#parts = parts;
    this.#log = parts.logs.child('daemon');
    this.store = store;
    this.router = router;
    this.#outbox = outbox;
    this.#vramTotalGb = vramTotalGb;
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
    const paths = daemonPaths(parts.configPath);
    // models_root changes take effect at the next start (engines were built with it too).
    this.#modelsRoot = store.current.modelsRoot;
    this.#provisioner = new ModelProvisioner({
      modelsRoot: this.#modelsRoot,
      log: parts.logs.child('models'),
      userAgent: USER_AGENT,
      fetch: countingFetch(globalThis.fetch, (bytes) => this.metrics.downloaded(bytes)),
    });
    this.#downloads = new ModelDownloads({
      ensure: (modelId, files, ctx) => this.#provisioner.ensure(modelId, files, ctx),
      forgetFailure: (url) => this.#provisioner.forgetFailures(url),
      log: parts.logs.child('models'),
      onSettled: () => void this.#refreshReadyModels(),
    });
    this.catalog = catalog;
    this.#readyModels = new ReadyModels(catalog, this.#provisioner);
    this.jobs = new JobBoard({ onEnded: (ended) => this.metrics.jobEnded(ended) });
    // Quiet for a while: give the memory of the last busy moment back (idle-memory.ts).
    const idleMemory = new IdleMemoryReducer(5_000, () => this.jobs.runningCount() > 0);
    this.jobs.onJobEnded(() => idleMemory.activity());
    void this.finished.then(() => idleMemory.stop());
    // Opt-in desktop notifications (notify_on_complete / notify_on_failure).
    const notifications = new JobNotifications(new Notifier({ log: parts.logs.child('notify') }), () => this.store.current);
    this.jobs.onJobEnded(({ job, status }) => {
      if (status === 'completed') void notifications.completed({ jobId: job.jobId, model: job.model });
      else if (status === 'failed') void notifications.failed({ jobId: job.jobId, model: job.model, error: job.reason });
    });
    this.updater = createDaemonUpdater({
      currentVersion: AGENT_VERSION,
      userAgent: USER_AGENT,
      settings: () => autoUpdateSettings(this.store.current),
      gate: this.gate,
      log: parts.logs.child('update'),
      configDir: paths.dir,
      stopCurrent: () => this.shutdown('update'),
    });
    parts.tap.subscribe((record) => this.jobs.onLogRecord(record));
    this.#cooldown = new FailureCooldown({
      cooldownMs: () => Math.round(this.store.current.failureCooldownSecs * 1000),
      log: parts.logs.child('daemon'),
      onChange: () => this.#stateFile.changed(),
    });
    this.#stateFile = new StateFile(
      paths.state,
      () => ({
        pid: process.pid,
        version: AGENT_VERSION,
        registration: this.#registrar.state,
        session: this.#session,
        ...(this.store.current.workerId ? { workerId: this.store.current.workerId } : {}),
        currentJobIds: this.runtime.jobs.currentJobIds(),
        waitingJobIds: this.runtime.jobs.waitingJobIds(),
        outboxEntries: outbox.size,
        paused: this.#paused,
        ...this.#cooldown.snapshot(),
        engineBusy: roundedBusy(this.runtime.jobs.engineBusy()),
        engines: this.router.status(),
        ...(this.#localApi ? { localApiUrl: this.#localApi.url } : {}),
      }),
      this.#log,
    );
    this.runtime = new WorkerRuntime({
      store,
      outbox,
      gate: this.gate,
      router,
      shipQueue: parts.shipQueue,
      userAgent: USER_AGENT,
      capabilities: () => this.capabilities(),
      holdBack: () => this.#holdBack(),
      logger: (module) => parts.logs.child(module),
      onChange: () => this.#stateFile.changed(),
      onEngineOutcome: (job, outcome) => {
        this.#cooldown.record(job, outcome);
        // The job's model files may be on disk now: advertise them from the next heartbeat.
        void this.#refreshReadyModels();
      },
      // A catalogue that cannot be saved is logged by the catalogue; the job runs regardless.
      onAccept: (claim) => void this.catalog.rememberOffer(claim).catch(() => {}),
      onJobEvent: (event) => this.jobs.onStudioJobEvent(event),
      scratchRoot: paths.work,
      provision: (modelId, files, ctx) => this.#downloads.ensure(modelId, files, ctx),
    });
    this.#localJobs = new LocalJobs({
      gate: this.gate,
      run: (job, ctx) => this.runtime.jobs.runLocal(job, ctx),
      board: this.jobs,
      catalog: this.catalog,
      router: this.router,
      stopping: () => this.#shuttingDown,
      log: parts.logs.child('local-api'),
    });
    this.#registrar = this.#newRegistrar();
  }

  static async start(parts: DaemonParts): Promise<Daemon> {
    const log = parts.logs.child('daemon');
    log.info({ op: 'startup', version: AGENT_VERSION, pid: process.pid, config: parts.configPath }, `studio-worker ${AGENT_VERSION} starting (pid ${process.pid})`);
    const vramTotalGb = await detectVramGb(parts.logs.child('vram'));
    let config = parts.config;
    if (!parts.configExists) {
      // First run: never promise more VRAM than the card has (original 0.4.9 #119).
      if (vramTotalGb > 0 && config.vramThresholdGb > vramTotalGb) config = { ...config, vramThresholdGb: vramTotalGb };
      await saveConfig(parts.configPath, config);
      log.info({ op: 'config', path: parts.configPath }, `created ${parts.configPath} with the defaults`);
    }
    if (vramTotalGb > 0 && config.vramThresholdGb > vramTotalGb) {
      log.warn({ op: 'vram', vramTotalGb, vramThresholdGb: config.vramThresholdGb }, `vram_threshold_gb (${config.vramThresholdGb}) is above the detected VRAM (${vramTotalGb} GB); jobs that big may run out of memory — lower vram_threshold_gb`);
    }
    const store = new ConfigStore(parts.configPath, config, parts.logs.child('config'));
    const router = new EngineRouter(parts.engines(config), parts.logs.child('engine'));
    const paths = daemonPaths(parts.configPath);
    const outbox = await Outbox.open(paths.outbox, parts.logs.child('outbox'));
    // Scratch dirs of jobs a crashed or killed daemon left behind; the lock makes them ours.
    await rm(paths.work, { recursive: true, force: true });
    await mkdir(paths.work, { recursive: true, mode: 0o700 });
    const catalog = await ModelCatalog.load(join(paths.dir, 'models.json'), parts.logs.child('models'));
    const daemon = new Daemon(parts, store, router, outbox, vramTotalGb, catalog);
    // The local API answers from here on — before the engines are probed and before registration.
    await daemon.#startLocalApi();
    await router.refresh();
    await daemon.#readyModels.refresh();
    // state.json is on disk before the studio can see this worker: launchers read it once the worker
    // shows up online there.
    daemon.#stateFile.changed();
    await daemon.#stateFile.settled();
    daemon.#begin();
    return daemon;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The local API's base URL, once it listens. */
  get localApiUrl(): string | undefined {
    return this.#localApi?.url;
  }

  /** Pause or resume taking studio offers (runtime only; every start comes up unpaused). */
  setPaused(paused: boolean): void {
    if (paused === this.#paused) return;
    this.#paused = paused;
    this.#log.info({ op: 'control', paused }, paused ? 'claiming paused by operator; new offers are rejected until resumed' : 'claiming resumed by operator; accepting new offers again');
    this.#stateFile.changed();
  }

  /**
   * The capability snapshot for hello, heartbeats and registration: `autoEnabled: false` while
   * paused, shutting down or cooling down after failed jobs, so the studio does not offer.
   */
  capabilities(): WorkerCapabilities {
    const paused = this.#paused || this.#shuttingDown || this.#cooldown.active;
    const engines = this.router.capabilities();
    const serves = (engine: string, kind: TaskKind) => (engines.supportedModelsPerKind[kind] ?? []).includes(`${engine}:*`);
    return buildCapabilities({ config: this.store.current, engines, vramTotalGb: this.#vramTotalGb, paused, readyModels: this.#readyModels.byKind(serves) });
  }

  /** What `GET /daemon/status` answers. Never a credential. */
  status(): DaemonStatusWire {
    const config = this.store.current;
    const cooldown = this.#cooldown.snapshot();
    const status: DaemonStatusWire = {
      version: AGENT_VERSION,
      pid: process.pid,
      configPath: this.#parts.configPath,
      apiBaseUrl: config.apiBaseUrl,
      paused: this.#paused,
      shuttingDown: this.#shuttingDown,
      busy: this.gate.busy,
      registered: Boolean(config.workerId && config.authToken),
      registration: this.#registrar.state,
      session: this.#session,
      vramTotalGb: this.#vramTotalGb,
      vramThresholdGb: config.vramThresholdGb,
      modelsRoot: this.#modelsRoot,
      localApiUrl: this.#localApi?.url ?? '',
      currentJobIds: this.runtime.jobs.currentJobIds(),
      waitingJobIds: this.runtime.jobs.waitingJobIds(),
      outboxEntries: this.#outbox.size,
      engines: this.router.status(),
      logsSeq: this.#parts.logRing.seq,
      uptimeSecs: Math.round((Date.now() - this.#startedAt) / 1000),
      machine: { name: hostname(), platform: `${process.platform} ${process.arch}`, nodeVersion: process.version, cpus: availableParallelism(), memoryGb: Math.round(totalmem() / 2 ** 30) },
    };
    if (config.workerId) status.workerId = config.workerId;
    if (this.#lastHeartbeat) status.lastHeartbeat = this.#lastHeartbeat;
    if (cooldown.consecutiveFailures > 0 || cooldown.cooldownUntil) status.cooldown = cooldown;
    return status;
  }

  async #refreshReadyModels(): Promise<void> {
    if (await this.#readyModels.refresh()) this.#stateFile.changed();
  }

  /**
   * SIGTERM / SIGINT: a graceful stop. A second signal exits at once, unless it came within
   * REPEAT_SIGNAL_WINDOW_MS of the first (then it is the same request delivered twice).
   */
  onSignal(signal: NodeJS.Signals): void {
    if (this.#shuttingDown) {
      if (performance.now() - this.#shutdownStartedAt < REPEAT_SIGNAL_WINDOW_MS) {
        this.#log.info({ op: 'shutdown', signal }, `${signal} while already shutting down; still waiting for the job (send it again to exit at once)`);
        return;
      }
      this.#log.warn({ op: 'shutdown', signal }, `second ${signal}; exiting now without waiting for the job`);
      this.#parts.lock.release();
      process.exit(EXIT_ERROR);
    }
    void this.shutdown(signal);
  }

  /**
   * Stop taking offers, give the running job `shutdown_grace_secs` to finish (else hand it back),
   * flush what the outbox can deliver, close the session with 1000, stop the local API, release the
   * lock.
   */
  async shutdown(why: string): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.#shutdownStartedAt = performance.now();
    this.updater.stop();
    this.#stateFile.changed();
    const graceMs = Math.round(this.store.current.shutdownGraceSecs * 1000);
    this.#log.info({ op: 'shutdown', signal: why, graceMs }, `shutting down (${why}); no new offers`);
    try {
      await Promise.all([this.runtime.jobs.drain(graceMs), this.#localJobs.drain(graceMs)]);
      const flushed = await this.runtime.delivery.flush(SHUTDOWN_FLUSH_MS);
      if (!flushed && this.runtime.links.current) this.#log.info({ op: 'shutdown' }, 'some results are still unacknowledged; they stay in the outbox for the next start');
    } catch (error) {
      this.#log.error({ op: 'shutdown', err: error }, 'error while draining jobs');
    }
    this.#cooldown.close();
    this.#stop.abort();
    await this.#mainLoop;
    this.runtime.delivery.abortUploads();
    // Downloads stop; their .part files stay for a resume after the next start.
    this.#downloads.close();
    await this.#provisioner.close();
    await this.router.closeAll();
    this.#setSession({ state: 'stopped' });
    await this.#stateFile.settled();
    await this.#stopLocalApi();
    this.#log.info({ op: 'shutdown' }, 'stopped');
    this.#parts.lock.release();
    this.#resolveFinished(EXIT_OK);
  }

  /**
   * A fresh registration after the operator rejected this worker (what `register --reset` and a
   * restart do): the credentials and the request are forgotten and a new request goes out.
   */
  async resetRegistration(): Promise<boolean> {
    if (this.#registrar.state.state !== 'rejected' || this.#shuttingDown) return false;
    await this.store.update((current) => withoutFields(current, REGISTRATION_FIELDS), 'registration reset through the local API');
    this.#log.info({ op: 'registration' }, 'registration reset by the operator; sending a new registration request');
    this.#registrar = this.#newRegistrar();
    this.#registrationRestart.abort();
    this.#stateFile.changed();
    return true;
  }

  /** `PUT /daemon/config`: validate, save through the ConfigStore, answer what needs a restart. */
  async writeConfig(patch: unknown): Promise<ConfigWriteResult> {
    const before = this.store.current;
    const result = applyConfigPatch(before, patch);
    if (!result.ok) throw new ApiError(400, 'invalid_config', result.message);
    if (result.changed.length > 0) {
      const changed = Object.fromEntries(result.changed.map((field) => [field, result.next[field]]));
      try {
        await this.store.update((current) => ({ ...current, ...changed }), `local API: ${result.changed.join(', ')}`);
      } catch (error) {
        // The store keeps a change in memory even when the save failed: put these fields back, so
        // the daemon goes on with what is on disk. Other fields (say, fresh credentials) stay.
        const previous = Object.fromEntries(result.changed.map((field) => [field, before[field]]));
        const unset = before.label === undefined && result.changed.includes('label') ? (['label'] as const) : [];
        await this.store.update((current) => withoutFields({ ...current, ...previous }, unset), 'local API: revert an unsaved change').catch(() => {});
        const why = error instanceof ConfigError ? error.message : error instanceof Error ? error.message : String(error);
        throw new ApiError(500, 'config_not_saved', `the settings were not saved: ${why}`);
      }
      this.#log.info({ op: 'config', fields: result.changed, restartRequired: result.restartRequired }, `settings changed through the local API: ${result.changed.join(', ')}`);
      this.#stateFile.changed();
    }
    return { config: editableConfig(this.store.current), restartRequired: result.restartRequired };
  }

  async #health(): Promise<HealthWire> {
    return {
      ok: true,
      version: AGENT_VERSION,
      busy: this.gate.busy,
      engine: 'multi',
      modelsRoot: this.#modelsRoot,
      modelsRootFreeBytes: await freeBytesAt(this.#modelsRoot),
    };
  }

  #apiContext(): LocalApiContext {
    const paths = daemonPaths(this.#parts.configPath);
    return {
      configDir: paths.dir,
      log: this.#parts.logs.child('local-api'),
      logs: this.#parts.logRing,
      jobs: this.jobs,
      generation: this.#localJobs,
      models: new LocalModels({
        modelsRoot: this.#modelsRoot,
        catalog: this.catalog,
        provisioner: this.#provisioner,
        downloads: this.#downloads,
        isReady: (model) => this.#provisioner.isReady(model.id, model.source.files),
        inUse: (modelId) => this.jobs.usesModel(modelId),
        refreshReady: () => this.#refreshReadyModels(),
        log: this.#parts.logs.child('models'),
      }),
      health: () => this.#health(),
      status: () => this.status(),
      setPaused: (paused) => {
        this.setPaused(paused);
        return this.#paused;
      },
      shutdown: (reason) => void this.shutdown(reason),
      resetRegistration: () => this.resetRegistration(),
      readConfig: (): EditableConfig => editableConfig(this.store.current),
      writeConfig: (patch) => this.writeConfig(patch),
      checkUpdate: () => this.checkForUpdate(),
      metrics: () =>
        this.metrics.render({
          version: AGENT_VERSION,
          session: this.#session.state,
          engineBusy: this.runtime.jobs.engineBusy(),
          paused: this.#paused,
          busy: this.gate.busy,
        }),
    };
  }

  /**
   * Listen on 127.0.0.1 (`STUDIO_WORKER_LOCAL_API_PORT`, else `local_api_port`, else any free port
   * when that one is taken) and publish the URL and token in `local-api.json`. A local API that
   * cannot start is logged; the daemon still serves the studio.
   */
  async #startLocalApi(): Promise<void> {
    const log = this.#parts.logs.child('local-api');
    const dir = daemonPaths(this.#parts.configPath).dir;
    try {
      const token = await this.#localApiToken();
      const port = chooseLocalApiPort(this.store.current.localApiPort, process.env, (message) => log.warn({ op: 'local_api' }, message));
      this.#localApi = await LocalApiServer.start({
        port,
        token,
        discoveryFile: discoveryPath(dir),
        routes: localApiRoutes(this.#apiContext()),
        ui: new StaticUi(this.#parts.uiDir),
        health: () => this.#health(),
        log,
      });
      await writeDiscovery(dir, { url: this.#localApi.url, token, pid: process.pid });
      log.info({ op: 'local_api', url: this.#localApi.url, discovery: discoveryPath(dir) }, `local API listening on ${this.#localApi.url} (URL and token in ${discoveryPath(dir)})`);
    } catch (error) {
      log.error({ op: 'local_api', err: error }, `the local API did not start: ${error instanceof Error ? error.message : String(error)}; studio jobs still run, but the CLI and UI cannot reach this daemon`);
      await this.#localApi?.close();
      this.#localApi = null;
    }
  }

  async #stopLocalApi(): Promise<void> {
    if (!this.#localApi) return;
    await this.#localApi.close();
    await removeDiscovery(daemonPaths(this.#parts.configPath).dir).catch((error: unknown) => {
      this.#log.warn({ op: 'local_api', err: error }, 'could not remove local-api.json; clients will find the daemon gone');
    });
  }

  /** `local_api_token` from the config, or a new one (32 random bytes) saved there once. */
  async #localApiToken(): Promise<string> {
    const existing = this.store.current.localApiToken;
    if (existing) return existing;
    const token = randomBytes(32).toString('hex');
    try {
      await this.store.update((current) => ({ ...current, localApiToken: token }), 'local API token created');
      this.#log.info({ op: 'local_api' }, 'created a local API token (saved in config.toml)');
    } catch {
      this.#log.warn({ op: 'local_api' }, 'could not save the new local API token in config.toml; it is valid until the daemon stops');
    }
    return token;
  }

  #holdBack(): string | null {
    if (this.#shuttingDown) return 'worker shutting down';
    if (this.#paused) return 'worker paused by operator';
    const coolingDown = this.#cooldown.holdBack();
    if (coolingDown !== null) return coolingDown;
    if (this.store.current.onlyWhenIdle) return 'only_when_idle is on and this worker cannot tell whether its user is idle';
    return null;
  }

  #newRegistrar(): Registrar {
    return new Registrar({
      store: this.store,
      userAgent: USER_AGENT,
      capabilities: () => this.capabilities(),
      log: this.#parts.logs.child('registration'),
      onState: () => this.#stateFile.changed(),
    });
  }

  #setSession(state: SessionState): void {
    if (state.state === 'reconnecting') this.metrics.reconnected();
    if (state.state !== 'connected') this.#lastHeartbeat = undefined;
    this.#session = state;
    this.#stateFile.changed();
  }

  #begin(): void {
    this.#stateFile.changed();
    void this.#startUpdater();
    // Deliberately not unref'd: it also keeps the process alive while the daemon only waits
    // (for approval, after a rejection, after a fatal session end).
    const refresh = setInterval(() => void Promise.all([this.router.refresh(), this.#refreshReadyModels()]).then(() => this.#stateFile.changed()), ENGINE_REFRESH_MS);
    void this.finished.then(() => clearInterval(refresh));
    this.#mainLoop = this.#serve().catch((error: unknown) => {
      this.#log.error({ op: 'daemon', err: error }, `the studio loop crashed: ${error instanceof Error ? error.message : String(error)}; restart the daemon`);
      this.#setSession({ state: 'fatal', reason: 'internal error; see the daemon log and restart it' });
    });
  }

  /**
   * Auto-update, unless this worker runs from a git checkout (nothing to install there: the owner
   * updates with git, and the feed is not polled). Records this start for a handover in progress:
   * the previous version waits for this marker before it steps aside for good.
   */
  async #startUpdater(): Promise<void> {
    const log = this.#parts.logs.child('update');
    const dir = daemonPaths(this.#parts.configPath).dir;
    await recordStartup(dir, { version: AGENT_VERSION }).catch((error: unknown) => log.warn({ op: 'auto_update', err: error }, 'could not record this start (started.json)'));
    const kind = await detectInstallKind(OWN_PACKAGE_ROOT, updatePaths(defaultDataDir()).versions);
    if (kind.kind === 'git') {
      log.info({ op: 'auto_update', root: kind.root }, `auto-update is off: this worker runs from a git checkout (${kind.root}); update it with git pull and npm install`);
      return;
    }
    if (!this.#shuttingDown) this.updater.start();
  }

  /** `POST /daemon/update/check`: one look at the feed (never installs). */
  checkForUpdate(): Promise<UpdateCheck> {
    return checkForUpdate(this.store.current, { currentVersion: AGENT_VERSION, userAgent: USER_AGENT });
  }

  /** Registration, then sessions; back to registration when the studio refuses the token. */
  async #serve(): Promise<void> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      const config = this.store.current;
      if (!config.workerId || !config.authToken) {
        this.#setSession({ state: 'waiting_for_approval' });
        this.#log.info({ op: 'registration' }, 'waiting for operator approval before opening the session');
        this.#registrationRestart = new AbortController();
        if ((await this.#registrar.untilApproved(AbortSignal.any([stop, this.#registrationRestart.signal]))) === 'stopped') {
          // A registration reset wakes the wait after a rejection: start over with the new request.
          if (stop.aborted) return;
          continue;
        }
      }
      const outcome = await superviseSessions(
        {
          log: this.#parts.logs.child('session'),
          userAgent: USER_AGENT,
          target: () => {
            const current = this.store.current;
            return {
              apiBaseUrl: current.apiBaseUrl,
              workerId: current.workerId ?? '',
              authToken: current.authToken ?? '',
              reconnectCap: current.wsReconnectAttempts,
              timings: current.advanced,
            };
          },
          host: (workerId, authToken) => {
            const host = this.runtime.hostFor(workerId, authToken);
            // hello and every heartbeat take a fresh capability snapshot: that is when one went out.
            return {
              ...host,
              capabilities: () => {
                this.#lastHeartbeat = new Date().toISOString();
                return host.capabilities();
              },
            };
          },
          onState: (state) => this.#setSession(state),
        },
        stop,
      );
      if (outcome.kind === 'stopped') return;
      if (outcome.kind === 'fatal') {
        // No more connection attempts; the process stays up so a supervisor does not restart the fight.
        await untilAborted(stop);
        return;
      }
      await this.store.update((current) => withoutFields(current, ['workerId', 'authToken']), 'auth failed: credentials cleared');
      this.#log.error(
        { op: 'registration', reason: outcome.reason },
        `the studio refused this worker's token (${outcome.reason}); cleared the credentials and sending a new registration request — approve it in the studio dashboard`,
      );
      this.#registrar = this.#newRegistrar();
      this.#stateFile.changed();
    }
  }
}

/** The engines config.toml enables. */
export function configuredEngines(config: WorkerConfig, log: Logger = silentLogger): Engine[] {
  return buildEngines(config.engines, { log, modelsRoot: config.modelsRoot, userAgent: USER_AGENT });
}

function roundedBusy(busy: { busyMs: number; sinceMs: number }): { busyMs: number; sinceMs: number } {
  return { busyMs: Math.round(busy.busyMs), sinceMs: Math.round(busy.sinceMs) };
}
