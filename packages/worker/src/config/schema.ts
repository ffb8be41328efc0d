import { z } from 'zod';
import { BadUrlError, graphicsApiBase, POOL_NAME } from '@studio-worker/protocol';
import { isHttpUrl } from '../platform/url-policy.ts';
import { defaultModelsRoot, expandHome } from './paths.ts';

/** The embedded studio that `npm start` runs next to the local worker. */
export const DEFAULT_API_BASE_URL = 'http://127.0.0.1:4780/';
export const DEFAULT_AUTO_UPDATE_FEED = 'https://registry.npmjs.org/studio-worker';
export const DEFAULT_VRAM_THRESHOLD_GB = 12;

function isStudioBaseUrl(value: string): boolean {
  try {
    graphicsApiBase(value);
    return true;
  } catch (error) {
    if (error instanceof BadUrlError) return false;
    throw error;
  }
}

const millis = (fallback: number) => z.number().int().min(1).default(fallback);

/**
 * Timings for tests and unusual networks. Every value is in milliseconds; the defaults are the
 * original's (heartbeat 5 s, read-idle 20 s, connect 15 s, reconnect 1 s doubling to 30 s, …).
 */
export const AdvancedSchema = z.object({
  heartbeatIntervalMs: millis(5_000),
  readIdleTimeoutMs: millis(20_000),
  connectTimeoutMs: millis(15_000),
  reconnectInitialMs: millis(1_000),
  reconnectMaxMs: millis(30_000),
  registrationPollMs: millis(30_000),
  logFlushMs: millis(1_000),
  uploadRetryBaseMs: millis(1_000),
  /** A result upload that keeps failing for this long is given up as `fail{upload_failed}`. */
  uploadGiveUpMs: millis(600_000),
  /** How often user presence (only_when_idle) and other GPU programs (pause_when_gpu_busy) are sampled. */
  presenceSampleMs: millis(5_000),
});

export const SyntheticEngineSchema = z.object({ enabled: z.boolean().default(true) });

/**
 * `[engines.*]` tables. Only synthetic is known here; other engines' tables are kept as they are
 * (their engines read them) instead of being dropped on the next save.
 */
export const EnginesSchema = z.looseObject({ synthetic: SyntheticEngineSchema.prefault({}) });

/** The worker's configuration, camelCase in code (`config.toml` spells the same keys in snake_case). */
export const WorkerConfigSchema = z.object({
  apiBaseUrl: z.string().refine(isStudioBaseUrl).default(DEFAULT_API_BASE_URL),
  workerId: z.string().min(1).max(200).optional(),
  authToken: z.string().min(1).optional(),
  installId: z.string().min(8).max(64).optional(),
  registrationRequestId: z.string().min(1).optional(),
  registrationSecret: z.string().min(1).optional(),
  label: z.string().max(100).optional(),
  /**
   * The pool this worker registers into on a sharded (Cloudflare) studio: sent as `x-studio-pool`
   * with the registration request only — later calls carry the pool in the request and worker ids.
   * Unset: no pool is sent, as an original worker (the studio puts it in `default`).
   */
  pool: POOL_NAME.optional(),
  vramThresholdGb: z.number().min(0).default(DEFAULT_VRAM_THRESHOLD_GB),
  autoStart: z.boolean().default(true),
  startMinimised: z.boolean().default(true),
  autoUpdateEnabled: z.boolean().default(true),
  autoUpdateIntervalSecs: z.number().int().min(60).default(1800),
  autoUpdateFeed: z.string().refine(isHttpUrl).default(DEFAULT_AUTO_UPDATE_FEED),
  autoUpdatePrerelease: z.boolean().default(false),
  modelsRoot: z
    .string()
    .min(1)
    .transform((path) => expandHome(path))
    .prefault(() => defaultModelsRoot()),
  /** 0 = reconnect forever. */
  wsReconnectAttempts: z.number().int().min(0).default(0),
  localApiPort: z.number().int().min(0).max(65_535).default(4787),
  localApiToken: z.string().min(1).optional(),
  onlyWhenIdle: z.boolean().default(false),
  /** With only_when_idle: no keyboard or mouse input for this long means the user is idle. */
  idleAfterSecs: z.number().min(0).default(120),
  /** Take no new jobs while another program uses the GPU (nvidia-smi / rocm-smi). */
  pauseWhenGpuBusy: z.boolean().default(false),
  /**
   * Take one more offer while a job runs, so the engine never waits for an upload. On by default:
   * `npm run bench:busy` measured the engine 99 % busy with it and 71 % without on a backlog of
   * 50 ms jobs (bench/README.md); a prefetched job goes back at once on cancel, shutdown or a
   * studio without the feature.
   */
  prefetch: z.boolean().default(true),
  /** After 3 failed jobs in a row, refuse offers for this long; 0 never pauses. */
  failureCooldownSecs: z.number().min(0).default(180),
  shutdownGraceSecs: z.number().min(0).default(5),
  /** Desktop notifications when a job completes or fails (opt-in). */
  notifyOnComplete: z.boolean().default(false),
  notifyOnFailure: z.boolean().default(false),
  /** Model files over plain http from a loopback host (tests, a local mirror); otherwise https only. */
  allowLoopbackHttp: z.boolean().default(false),
  /**
   * Origins whose input images may be fetched although they are on a loopback, private or
   * link-local address (and over plain http). The studio's own origin and the engines' servers
   * are always allowed; everything else must be a public https host.
   */
  allowedInputOrigins: z.array(z.string().refine(isHttpUrl, 'an http or https origin such as "http://192.168.1.20:8080"')).default([]),
  engines: EnginesSchema.prefault({}),
  advanced: AdvancedSchema.prefault({}),
});
export type WorkerConfig = z.output<typeof WorkerConfigSchema>;
export type AdvancedTimings = WorkerConfig['advanced'];

/** Fields whose values are credentials: never logged, masked by `studio-worker config`. */
export const SECRET_FIELDS = ['authToken', 'registrationSecret', 'localApiToken'] as const satisfies readonly (keyof WorkerConfig)[];

/** Optional text fields where an empty string in the file means "not set". */
export const OPTIONAL_TEXT_FIELDS = [
  'workerId',
  'authToken',
  'installId',
  'registrationRequestId',
  'registrationSecret',
  'label',
  'pool',
  'localApiToken',
] as const satisfies readonly (keyof WorkerConfig)[];

/** What each field allows, for error messages ("vram_threshold_gb must be a number ≥ 0"). Keys are snake_case paths. */
export const ALLOWED_VALUES: Readonly<Record<string, string>> = {
  api_base_url: 'an http, https, ws or wss URL such as "https://studio.example/"',
  worker_id: 'a non-empty string of at most 200 characters',
  auth_token: 'a non-empty string',
  install_id: 'a string of 8 to 64 characters',
  registration_request_id: 'a non-empty string',
  registration_secret: 'a non-empty string',
  label: 'a string of at most 100 characters',
  pool: '1 to 32 lowercase letters, digits or "-" (a pool name such as "gpu")',
  vram_threshold_gb: 'a number ≥ 0',
  auto_start: 'true or false',
  start_minimised: 'true or false',
  auto_update_enabled: 'true or false',
  auto_update_interval_secs: 'a whole number of seconds ≥ 60',
  auto_update_feed: 'an http or https URL',
  auto_update_prerelease: 'true or false',
  models_root: 'a non-empty path',
  ws_reconnect_attempts: 'a whole number ≥ 0 (0 = reconnect forever)',
  local_api_port: 'a whole number from 0 to 65535',
  local_api_token: 'a non-empty string',
  only_when_idle: 'true or false',
  idle_after_secs: 'a number of seconds ≥ 0',
  pause_when_gpu_busy: 'true or false',
  prefetch: 'true or false',
  failure_cooldown_secs: 'a number of seconds ≥ 0 (0 = never pause after failed jobs)',
  shutdown_grace_secs: 'a number of seconds ≥ 0',
  notify_on_complete: 'true or false',
  notify_on_failure: 'true or false',
  allow_loopback_http: 'true or false (model files over plain http from 127.0.0.1 / localhost / ::1)',
  allowed_input_origins: 'a list of http or https origins such as ["http://192.168.1.20:8080"]',
  engines: 'a table of [engines.<name>] tables',
  'engines.synthetic': 'a table',
  'engines.synthetic.enabled': 'true or false',
  advanced: 'a table of timings in milliseconds',
};
for (const key of Object.keys(AdvancedSchema.shape)) {
  (ALLOWED_VALUES as Record<string, string>)[`advanced.${camelToSnake(key)}`] = 'a whole number of milliseconds ≥ 1';
}

export function snakeToCamel(key: string): string {
  return key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function isPlainTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Rename every table key (recursively); arrays and scalar values are left as they are. The keys of
 * an `env` table are environment variable names and are kept exactly as written.
 */
export function renameKeys(value: unknown, rename: (key: string) => string): unknown {
  if (!isPlainTable(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[rename(key)] = key === 'env' ? inner : renameKeys(inner, rename);
  return out;
}

/** Keys inside `[engines.*]` tables whose values are credentials (A1111 password, API keys). */
export const ENGINE_SECRET_KEYS: readonly string[] = ['password', 'apiKey'];
