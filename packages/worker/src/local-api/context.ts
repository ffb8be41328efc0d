import type { Logger } from '@studio-worker/log';
import type { EditableConfig, EditableField } from '../config/editable.ts';
import type { JobBoard } from '../observe/job-board.ts';
import type { LogRing } from '../observe/log-ring.ts';
import type { EngineStatus } from '../engines/router.ts';
import type { RegistrationState } from '../registration/index.ts';
import type { SessionState } from '../session/index.ts';
import type { LocalJobs } from './local-jobs.ts';
import type { LocalModels } from './models.ts';

/** `GET /healthz` (no auth). */
export interface HealthWire {
  ok: true;
  version: string;
  busy: boolean;
  engine: 'multi';
  modelsRoot: string;
  /** Free bytes on the filesystem that holds models_root; null when it cannot be read. */
  modelsRootFreeBytes: number | null;
}

/** `GET /daemon/status`: what the daemon is doing. Never holds a credential. */
export interface DaemonStatusWire {
  version: string;
  pid: number;
  configPath: string;
  apiBaseUrl: string;
  paused: boolean;
  shuttingDown: boolean;
  /** A job holds the job gate. */
  busy: boolean;
  registered: boolean;
  workerId?: string;
  registration: RegistrationState;
  session: SessionState;
  /** When the daemon last sent the studio its capabilities (hello or heartbeat) on this session. */
  lastHeartbeat?: string;
  /** The failure cooldown's streak, and its end while the worker pauses itself. */
  cooldown?: { consecutiveFailures: number; cooldownUntil?: string; cooldownAfterFailures?: number; lastFailure?: string };
  vramTotalGb: number;
  /** The GPUs found at start, per vendor. */
  gpus?: Array<{ vendor: string; name: string; vramGb: number; source: string }>;
  /** With only_when_idle: what the presence probe says (unknown holds work back). */
  presence?: { presence: 'idle' | 'active' | 'unknown'; idleSecs?: number; source?: string; problem?: string };
  /** With pause_when_gpu_busy: other programs using the GPU now. */
  gpuBusy?: Array<{ pid: number; name: string }>;
  vramThresholdGb: number;
  modelsRoot: string;
  localApiUrl: string;
  /** Accepted studio jobs not finished yet, the one with the engine first. */
  currentJobIds: string[];
  /** Of those, prefetched jobs waiting for the engine. */
  waitingJobIds: string[];
  /** Results and failures waiting for the studio's acknowledgement. */
  outboxEntries: number;
  engines: EngineStatus[];
  /** The newest log sequence number (`GET /daemon/logs?after=`). */
  logsSeq: number;
  uptimeSecs: number;
  /** This machine, for the UI's Worker page. */
  machine: { name: string; platform: string; nodeVersion: string; cpus: number; memoryGb: number };
  /**
   * What really happens at start-up and for updates, which the UI shows instead of the config's
   * wish: auto-update runs only in an installed package (`installKind` git: never), and only a
   * login entry (`setup`) starts the daemon at login. `setupCommand`: how to add that entry here.
   */
  startup: { installKind: 'git' | 'package' | 'versioned' | 'unknown'; autostartInstalled: boolean; setupCommand: string };
}

export interface ConfigWriteResult {
  config: EditableConfig;
  /** Changed fields that take effect only after a restart. */
  restartRequired: EditableField[];
}

/** What the local API's routes need from the daemon. */
export interface LocalApiContext {
  configDir: string;
  log: Logger;
  logs: LogRing;
  jobs: JobBoard;
  models: LocalModels;
  generation: LocalJobs;
  health(): Promise<HealthWire>;
  status(): DaemonStatusWire;
  /** Runtime only; answers the new state. */
  setPaused(paused: boolean): boolean;
  /** Starts a graceful shutdown (the answer goes out first). */
  shutdown(reason: string): void;
  /** A fresh registration after a rejection; false when the registration is not rejected. */
  resetRegistration(): Promise<boolean>;
  readConfig(): EditableConfig;
  /** Throws ApiError 400 `invalid_config` or 500 `config_not_saved`. */
  writeConfig(patch: unknown): Promise<ConfigWriteResult>;
  metrics(): Promise<string>;
  /** One look at the update feed (never installs). */
  checkUpdate(): Promise<import('../update/check.ts').UpdateCheck>;
}
