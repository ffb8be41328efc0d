import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger, LogRoot } from '@studio-worker/log';
import type { WorkerCapabilities } from '@studio-worker/protocol';
import { ConfigStore, daemonPaths, saveConfig, type WorkerConfig } from '../config/index.ts';
import { editableConfig, type EditableConfig } from '../config/editable.ts';
import type { Engine } from '../engines/engine.ts';
import { EngineRouter } from '../engines/router.ts';
import { LocalJobs, LocalModels, type ConfigWriteResult, type DaemonStatusWire, type HealthWire, type LocalApiContext } from '../local-api/index.ts';
import { ModelCatalog, ModelProvisioner, ReadyModels } from '../models/index.ts';
import { ModelDownloads } from '../models/download-board.ts';
import { countingFetch } from '../observe/counting-fetch.ts';
import { JobBoard } from '../observe/job-board.ts';
import type { LogRing } from '../observe/log-ring.ts';
import type { LogTap } from '../observe/log-tap.ts';
import { WorkerMetrics } from '../observe/worker-metrics.ts';
import { autostartInstalled } from '../ops/autostart.ts';
import { currentHost } from '../ops/host.ts';
import { JobNotifications, Notifier } from '../ops/notify.ts';
import { EXIT_DISPLACED, EXIT_ERROR, EXIT_OK } from '../platform/exit-codes.ts';
import { JobGate } from '../platform/job-gate.ts';
import type { DaemonLock } from '../platform/lock.ts';
import { AGENT_VERSION, USER_AGENT } from '../platform/version.ts';
import { Outbox, WorkerRuntime } from '../runner/index.ts';
import type { LogShipQueue } from '../session/index.ts';
import { autoUpdateSettings, checkForUpdate, createDaemonUpdater, defaultDataDir, detectInstallKind, OWN_PACKAGE_ROOT, recordStartup, updatePaths, type AutoUpdater, type UpdateCheck } from '../update/index.ts';
import { detectSupervisor } from '../update/supervision.ts';
import { writeConfigPatch } from './config-writes.ts';
import { FailureCooldown } from './failure-cooldown.ts';
import { IdleMemoryReducer } from './idle-memory.ts';
import { GpuBusyMonitor } from '../machine/gpu-busy.ts';
import { freeBytesAt } from '../machine/free-space.ts';
import type { Lifecycle } from './lifecycle.ts';
import { LocalApiHost } from './local-api-host.ts';
import { PresenceMonitor } from '../machine/presence.ts';
import { StudioLoop } from './serve-loop.ts';
import { StateFile } from './state-file.ts';
import { capabilitiesOf, holdBackReason, stateOf, statusOf, type StatusSources } from './status.ts';
import { detectGpus, totalVramGb, type GpuInfo } from '../machine/vram.ts';

/** How long shutdown waits for the studio to acknowledge what is left in the outbox. */
const SHUTDOWN_FLUSH_MS = 3_000;
/** Engines are probed again this often, so one that comes up (or goes away) is advertised correctly. */
const ENGINE_REFRESH_MS = 30_000;

export interface DaemonParts {
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
  engines: (config: WorkerConfig) => Engine[] | Promise<Engine[]>;
  /** Made by runDaemon before anything else, so a signal during start-up is counted. */
  lifecycle: Lifecycle;
}

/**
 * The running daemon, as its parts wired together (the composition). Where it is in its life is the
 * one state of `lifecycle.ts`; the registration → session loop is `serve-loop.ts`; what it reports
 * is read by `status.ts`; the local API is `local-api-host.ts`. Its job gate is public so that the
 * local API and the auto-updater share it.
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
  readonly #gpus: GpuInfo[];
  readonly #presence: PresenceMonitor;
  readonly #gpuBusy: GpuBusyMonitor;
  readonly #cooldown: FailureCooldown;
  readonly #provisioner: ModelProvisioner;
  readonly #downloads: ModelDownloads;
  readonly #readyModels: ReadyModels;
  readonly #localJobs: LocalJobs;
  readonly #outbox: Outbox;
  /** models_root as the engines and the provisioner were built with (a change applies after a restart). */
  readonly #modelsRoot: string;
  readonly #startedAt = Date.now();
  readonly #studio: StudioLoop;
  readonly #localApi: LocalApiHost;
  readonly #lifecycle: Lifecycle;
  #resolveFinished!: (code: number) => void;
  /** What the process exits with once shut down (EXIT_DISPLACED after a 4003). */
  #exitCode = EXIT_OK;
  /** How this worker was installed (a git checkout never auto-updates), once known. */
  #installKind: DaemonStatusWire['startup']['installKind'] = 'unknown';
  /** Whether a login entry starts the daemon (looked at on start and with every engine refresh). */
  #autostartInstalled = false;
  #mainLoop: Promise<void> = Promise.resolve();

  private constructor(parts: DaemonParts, store: ConfigStore, router: EngineRouter, outbox: Outbox, gpus: GpuInfo[], catalog: ModelCatalog) {
    this.#parts = parts;
    this.#lifecycle = parts.lifecycle;
    this.#log = parts.logs.child('daemon');
    this.store = store;
    this.router = router;
    this.#outbox = outbox;
    this.#gpus = gpus;
    this.#vramTotalGb = totalVramGb(gpus);
    const sampleMs = () => store.current.advanced.presenceSampleMs;
    this.#presence = new PresenceMonitor({
      log: parts.logs.child('presence'),
      idleAfterMs: () => store.current.idleAfterSecs * 1000,
      sampleMs,
      wanted: () => store.current.onlyWhenIdle,
      onChange: () => this.#stateFile.changed(),
    });
    this.#gpuBusy = new GpuBusyMonitor({ log: parts.logs.child('gpu'), sampleMs, wanted: () => store.current.pauseWhenGpuBusy, onChange: () => this.#stateFile.changed() });
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
    const paths = daemonPaths(parts.configPath);
    // models_root changes take effect at the next start (engines were built with it too).
    this.#modelsRoot = store.current.modelsRoot;
    this.#provisioner = new ModelProvisioner({
      modelsRoot: this.#modelsRoot,
      log: parts.logs.child('models'),
      userAgent: USER_AGENT,
      fetch: countingFetch(globalThis.fetch, (bytes) => this.metrics.downloaded(bytes)),
      allowLoopbackHttp: store.current.allowLoopbackHttp,
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
      if (status === 'done') void notifications.completed({ jobId: job.jobId, model: job.model });
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
    this.#stateFile = new StateFile(paths.state, () => stateOf(this.#sources()), this.#log);
    this.runtime = new WorkerRuntime({
      store,
      outbox,
      gate: this.gate,
      router,
      shipQueue: parts.shipQueue,
      userAgent: USER_AGENT,
      capabilities: () => this.capabilities(),
      holdBack: () => holdBackReason(this.#sources()),
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
      stopping: () => this.#lifecycle.shuttingDown,
      log: parts.logs.child('local-api'),
    });
    this.#studio = new StudioLoop({
      store,
      logs: parts.logs,
      configPath: parts.configPath,
      capabilities: () => this.capabilities(),
      hostFor: (workerId, authToken) => this.runtime.hostFor(workerId, authToken),
      onChange: () => this.#stateFile.changed(),
      onReconnect: () => this.metrics.reconnected(),
      onDisplaced: () => {
        // A newer process holds this worker id: exit with a code that services and PM2 are told
        // not to restart on (a restart would displace the newer one, and the two would take turns).
        // launchd cannot be told "not this code" (KeepAlive restarts every non-zero exit), so under
        // launchd the displaced daemon exits 0 instead.
        this.#exitCode = detectSupervisor() === 'launchd' ? EXIT_OK : EXIT_DISPLACED;
        void this.shutdown('displaced');
      },
    });
    this.#localApi = new LocalApiHost({ store, logs: parts.logs, configPath: parts.configPath, uiDir: parts.uiDir, context: () => this.#apiContext(), health: () => this.#health() });
  }

  static async start(parts: DaemonParts): Promise<Daemon> {
    const log = parts.logs.child('daemon');
    log.info({ op: 'startup', version: AGENT_VERSION, pid: process.pid, config: parts.configPath }, `studio-worker ${AGENT_VERSION} starting (pid ${process.pid})`);
    const gpus = await detectGpus({ log: parts.logs.child('vram') });
    const vramTotalGb = totalVramGb(gpus);
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
    const router = new EngineRouter(await parts.engines(config), parts.logs.child('engine'));
    const paths = daemonPaths(parts.configPath);
    const outbox = await Outbox.open(paths.outbox, parts.logs.child('outbox'));
    // Scratch dirs of jobs a crashed or killed daemon left behind; the lock makes them ours.
    await rm(paths.work, { recursive: true, force: true });
    await mkdir(paths.work, { recursive: true, mode: 0o700 });
    const catalog = await ModelCatalog.load(join(paths.dir, 'models.json'), parts.logs.child('models'));
    const daemon = new Daemon(parts, store, router, outbox, gpus, catalog);
    // The local API answers from here on — before the engines are probed and before registration.
    await daemon.#localApi.start();
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
    return this.#lifecycle.paused;
  }

  /** The local API's base URL, once it listens. */
  get localApiUrl(): string | undefined {
    return this.#localApi.url;
  }

  /** Pause or resume taking studio offers (runtime only; every start comes up unpaused). */
  setPaused(paused: boolean): void {
    if (!this.#lifecycle.setPaused(paused)) return;
    this.#log.info({ op: 'control', paused }, paused ? 'claiming paused by operator; new offers are rejected until resumed' : 'claiming resumed by operator; accepting new offers again');
    this.#stateFile.changed();
  }

  /**
   * The capability snapshot for hello, heartbeats and registration: `autoEnabled: false` while
   * paused, shutting down or cooling down after failed jobs, so the studio does not offer.
   */
  capabilities(): WorkerCapabilities {
    return capabilitiesOf(this.#sources());
  }

  /** What `GET /daemon/status` answers. Never a credential. */
  status(): DaemonStatusWire {
    return statusOf(this.#sources());
  }

  /** What status, state.json, capabilities and the hold-back reasons are read from (status.ts). */
  #sources(): StatusSources {
    return {
      configPath: this.#parts.configPath,
      store: this.store,
      lifecycle: this.#lifecycle,
      gate: this.gate,
      router: this.router,
      jobs: this.runtime.jobs,
      outbox: this.#outbox,
      studio: this.#studio,
      cooldown: this.#cooldown,
      presence: this.#presence,
      gpuBusy: this.#gpuBusy,
      readyModels: this.#readyModels,
      logRing: this.#parts.logRing,
      gpus: this.#gpus,
      vramTotalGb: this.#vramTotalGb,
      modelsRoot: this.#modelsRoot,
      startedAt: this.#startedAt,
      localApiUrl: this.#localApi.url,
      installKind: this.#installKind,
      autostartInstalled: this.#autostartInstalled,
    };
  }

  async #refreshReadyModels(): Promise<void> {
    if (await this.#readyModels.refresh()) this.#stateFile.changed();
  }

  /**
   * SIGTERM / SIGINT: a graceful stop. A second signal exits at once, unless it came within
   * REPEAT_SIGNAL_WINDOW_MS of the stop's start (then it is the same request delivered twice).
   */
  onSignal(signal: NodeJS.Signals): void {
    const verdict = this.#lifecycle.shuttingDown ? this.#lifecycle.signal(signal) : 'stop';
    if (verdict === 'repeat') {
      this.#log.info({ op: 'shutdown', signal }, `${signal} while already shutting down; still waiting for the job (send it again to exit at once)`);
      return;
    }
    if (verdict === 'exit-now') {
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
    if (!this.#lifecycle.drain(why)) return;
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
    this.#lifecycle.stop();
    this.#cooldown.close();
    this.#stop.abort();
    await this.#mainLoop;
    this.runtime.delivery.abortUploads();
    // Downloads stop; their .part files stay for a resume after the next start.
    this.#downloads.close();
    await this.#provisioner.close();
    await this.router.closeAll();
    // A fatal end (displaced) stays in state.json: it says why this daemon is not running.
    if (this.#studio.session.state !== 'fatal') this.#studio.setSession({ state: 'stopped' });
    await this.#stateFile.settled();
    await this.#localApi.stop();
    this.#log.info({ op: 'shutdown' }, 'stopped');
    this.#parts.lock.release();
    this.#resolveFinished(this.#exitCode);
  }

  /** A fresh registration after the operator rejected this worker (StudioLoop.resetRegistration). */
  resetRegistration(): Promise<boolean> {
    if (this.#lifecycle.shuttingDown) return Promise.resolve(false);
    return this.#studio.resetRegistration(this.#log);
  }

  /** `PUT /daemon/config` (config-writes.ts). */
  writeConfig(patch: unknown): Promise<ConfigWriteResult> {
    return writeConfigPatch(this.store, patch, this.#log, () => this.#stateFile.changed());
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
        return this.#lifecycle.paused;
      },
      shutdown: (reason) => void this.shutdown(reason),
      resetRegistration: () => this.resetRegistration(),
      readConfig: (): EditableConfig => editableConfig(this.store.current),
      writeConfig: (patch) => this.writeConfig(patch),
      checkUpdate: () => this.checkForUpdate(),
      metrics: () =>
        this.metrics.render({
          version: AGENT_VERSION,
          session: this.#studio.session.state,
          engineBusy: this.runtime.jobs.engineBusy(),
          paused: this.#lifecycle.paused,
          busy: this.gate.busy,
        }),
    };
  }

  #begin(): void {
    this.#lifecycle.started();
    this.#stateFile.changed();
    void this.#startUpdater();
    // Deliberately not unref'd: it also keeps the process alive while the daemon only waits
    // (for approval, after a rejection, after a fatal session end).
    void this.#refreshAutostart();
    const refresh = setInterval(
      () => void Promise.all([this.router.refresh(), this.#refreshReadyModels(), this.#refreshAutostart()]).then(() => this.#stateFile.changed()),
      ENGINE_REFRESH_MS,
    );
    this.#presence.start();
    this.#gpuBusy.start();
    void this.finished.then(() => {
      clearInterval(refresh);
      this.#presence.stop();
      this.#gpuBusy.stop();
    });
    this.#mainLoop = this.#studio.run(this.#stop.signal).catch((error: unknown) => {
      this.#log.error({ op: 'daemon', err: error }, `the studio loop crashed: ${error instanceof Error ? error.message : String(error)}; restart the daemon`);
      this.#studio.setSession({ state: 'fatal', reason: 'internal error; see the daemon log and restart it' });
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
    this.#installKind = kind.kind;
    if (kind.kind === 'git') {
      log.info({ op: 'auto_update', root: kind.root }, `auto-update is off: this worker runs from a git checkout (${kind.root}); update it with git pull and npm install`);
      return;
    }
    if (!this.#lifecycle.shuttingDown) this.updater.start();
  }

  async #refreshAutostart(): Promise<void> {
    this.#autostartInstalled = await autostartInstalled(currentHost()).catch(() => false);
  }

  /** `POST /daemon/update/check`: one look at the feed (never installs). */
  checkForUpdate(): Promise<UpdateCheck> {
    return checkForUpdate(this.store.current, { currentVersion: AGENT_VERSION, userAgent: USER_AGENT });
  }
}
