// `npm run studio:cf`: the Cloudflare host under workerd, locally and offline (Miniflare 4), with
// the same routes, health check and start line as `studio serve`.
//
//   STUDIO_PORT          port (default 4780; 0 picks a free one)
//   STUDIO_HOST          address to listen on (default 127.0.0.1)
//   STUDIO_ADMIN_TOKEN   the admin token (the Worker secret); when unset, one is generated at the
//                        first start, printed once and kept in <data dir>/admin-token (0600)
//   STUDIO_CF_DATA_DIR   where Durable Object storage and R2 objects persist, and the bundle is built
//                        (default ./studio-cf-data)
//   STUDIO_POOLS, STUDIO_ALLOW_LOOPBACK_MODELS, STUDIO_LOG_LEVEL, STUDIO_LEASE_SECONDS,
//   STUDIO_RETENTION_DAYS, STUDIO_MAX_ATTEMPTS, STUDIO_HELLO_TIMEOUT_SECONDS,
//   STUDIO_WEBHOOK_RETRY_MS   Worker vars (wrangler.jsonc)
//   STUDIO_CF_TEST_HOOKS=1   tests only: `POST /__test/evict?pool=<pool>` evicts that pool's object
//                        from memory (its hibernatable sockets stay open), as
//                        @cloudflare/vitest-pool-workers' evictDurableObject does
//
// Flags (the `studio serve` ones that mean the same here; each sets its Worker var):
//   --lease-seconds N, --max-attempts N, --hello-timeout-seconds N, --allow-loopback-http-models,
//   --port N, --host H, --data-dir D
// `studio serve`'s connection limits (--idle-timeout-seconds, --headers-timeout-seconds) belong to
// its Node HTTP server; under workerd the runtime owns connections, so they are refused here.
//
// Exits cleanly (code 0) on SIGTERM and SIGINT.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Miniflare, type WorkerOptions } from 'miniflare';
import { buildCloudflare } from './build-cf.ts';

process.env.WRANGLER_SEND_METRICS = 'false';
const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const WRANGLER_CONFIG = join(REPO_ROOT, 'packages', 'studio', 'wrangler.jsonc');

interface WranglerConfig {
  compatibility_date: string;
  compatibility_flags: string[];
  vars: Record<string, string>;
}

/** wrangler.jsonc without its comments (none of its strings holds `//`). */
export function readWranglerConfig(): WranglerConfig {
  const text = readFileSync(WRANGLER_CONFIG, 'utf8').replace(/^\s*\/\/.*$/gm, '').replace(/\s\/\/ .*$/gm, '');
  return JSON.parse(text) as WranglerConfig;
}

/**
 * The test-only hooks Worker: `workerd:unsafe`'s `evict` (enabled by the `unsafe_module`
 * compatibility flag) on the pool's object, with `webSockets: 'hibernate'` — exactly what
 * @cloudflare/vitest-pool-workers 0.23's `evictDurableObject(stub)` calls
 * (dist/worker/lib/cloudflare/test-internal.mjs).
 */
const TEST_HOOKS_SCRIPT = `
import unsafe from 'workerd:unsafe';
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== 'POST' || url.pathname !== '/__test/evict') return new Response('no such test hook', { status: 404 });
    const pool = url.searchParams.get('pool') ?? 'default';
    await unsafe.evict(env.STUDIO.get(env.STUDIO.idFromName(pool)), { webSockets: 'hibernate' });
    return Response.json({ evicted: pool });
  },
};`;

export interface CfStudioOptions {
  port: number;
  host: string;
  dataDir: string;
  adminToken: string;
  vars?: Record<string, string>;
  testHooks?: boolean;
}

export async function startCfStudio(options: CfStudioOptions): Promise<{ url: string; mf: Miniflare }> {
  const config = readWranglerConfig();
  // Built into the data dir: launches side by side (the e2e suite runs several) never read each
  // other's half-written bundle.
  const built = await buildCloudflare(join(options.dataDir, 'bundle'));
  const studio: WorkerOptions = {
    name: 'studio',
    modules: true,
    scriptPath: built.path,
    // The bundle's folder is its module root (workerd refuses a module path outside the root).
    modulesRoot: dirname(built.path),
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    durableObjects: { STUDIO: { className: 'StudioObject', useSQLite: true } },
    r2Buckets: ['RESULTS'],
    bindings: { ...config.vars, ...options.vars, STUDIO_ADMIN_TOKEN: options.adminToken },
  };
  const workers: WorkerOptions[] = [studio];
  if (options.testHooks) {
    studio.routes = ['*'];
    workers.push({
      name: 'test-hooks',
      modules: true,
      script: TEST_HOOKS_SCRIPT,
      compatibilityDate: config.compatibility_date,
      compatibilityFlags: ['unsafe_module'],
      durableObjects: { STUDIO: { className: 'StudioObject', scriptName: 'studio', useSQLite: true } },
      routes: ['*/__test/*'],
    });
  }
  const mf = new Miniflare({
    host: options.host,
    port: options.port,
    workers,
    durableObjectsPersist: join(options.dataDir, 'durable-objects'),
    r2Persist: join(options.dataDir, 'r2'),
  });
  const ready = await mf.ready;
  return { url: ready.origin, mf };
}

/** The admin token: STUDIO_ADMIN_TOKEN, else the one generated at the first start (printed then, once). */
function adminToken(dataDir: string): { token: string; generated: boolean } {
  if (process.env.STUDIO_ADMIN_TOKEN) return { token: process.env.STUDIO_ADMIN_TOKEN, generated: false };
  const file = join(dataDir, 'admin-token');
  try {
    return { token: readFileSync(file, 'utf8').trim(), generated: false };
  } catch {
    const token = `sat_${randomBytes(24).toString('hex')}`;
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return { token, generated: true };
  }
}

const FORWARDED_VARS = [
  'STUDIO_POOLS',
  'STUDIO_ALLOW_LOOPBACK_MODELS',
  'STUDIO_LOG_LEVEL',
  'STUDIO_LEASE_SECONDS',
  'STUDIO_RETENTION_DAYS',
  'STUDIO_HELLO_TIMEOUT_SECONDS',
  'STUDIO_MAX_ATTEMPTS',
  'STUDIO_WEBHOOK_RETRY_MS',
] as const;

/** `studio serve` flags that mean the same under workerd, as the Worker vars they set. */
const FLAG_VARS = {
  'lease-seconds': 'STUDIO_LEASE_SECONDS',
  'max-attempts': 'STUDIO_MAX_ATTEMPTS',
  'hello-timeout-seconds': 'STUDIO_HELLO_TIMEOUT_SECONDS',
} as const;

interface LaunchFlags {
  vars: Record<string, string>;
  port?: number;
  host?: string;
  dataDir?: string;
}

/** The command line: a clear error for anything this launcher does not take. */
export function parseLaunchFlags(argv: readonly string[]): LaunchFlags {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      'lease-seconds': { type: 'string' },
      'max-attempts': { type: 'string' },
      'hello-timeout-seconds': { type: 'string' },
      'allow-loopback-http-models': { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
    },
  });
  const vars: Record<string, string> = {};
  for (const [flag, name] of Object.entries(FLAG_VARS)) {
    const raw = values[flag as keyof typeof FLAG_VARS];
    if (raw === undefined) continue;
    if (!(Number(raw) > 0)) throw new Error(`--${flag} takes a positive number (got "${raw}")`);
    vars[name] = raw;
  }
  if (values['allow-loopback-http-models']) vars.STUDIO_ALLOW_LOOPBACK_MODELS = '1';
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) throw new Error(`--port takes 0 to 65535 (got "${values.port}")`);
  return { vars, port, host: values.host, dataDir: values['data-dir'] };
}

if (import.meta.main) {
  let flags: LaunchFlags;
  try {
    flags = parseLaunchFlags(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(
      `studio:cf: ${(error as Error).message}\n` +
        'it takes --lease-seconds, --max-attempts, --hello-timeout-seconds, --allow-loopback-http-models, --port, --host and --data-dir ' +
        "(studio serve's connection timeouts belong to its Node HTTP server; under workerd the runtime owns connections)\n",
    );
    process.exit(2);
  }
  const dataDir = resolve(flags.dataDir ?? process.env.STUDIO_CF_DATA_DIR ?? 'studio-cf-data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const admin = adminToken(dataDir);
  const vars: Record<string, string> = {};
  for (const name of FORWARDED_VARS) if (process.env[name] !== undefined) vars[name] = process.env[name] as string;
  Object.assign(vars, flags.vars);
  const { url, mf } = await startCfStudio({
    port: flags.port ?? Number(process.env.STUDIO_PORT ?? 4780),
    host: flags.host ?? process.env.STUDIO_HOST ?? '127.0.0.1',
    dataDir,
    adminToken: admin.token,
    vars,
    testHooks: process.env.STUDIO_CF_TEST_HOOKS === '1',
  });
  const base = url.replace(/\/$/, '');
  if (admin.generated) {
    process.stderr.write(
      `\n  Admin token (shown once; also in ${join(dataDir, 'admin-token')}): ${admin.token}\n  Dashboard: ${base}/#token=${admin.token}\n\n`,
    );
  }
  process.stderr.write(`studio (cloudflare, workerd) listening on ${base} (dashboard: ${base}/)\n`);
  // Miniflare's own exit hook answers SIGTERM/SIGINT with exit code 143/130; ours stops workerd
  // (dispose) and exits 0 like `studio serve`, so it replaces those listeners (the hook's `exit`
  // listener stays: workerd never outlives this process).
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(1);
    stopping = true;
    void mf.dispose().then(() => process.exit(0));
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, stop);
  }
}
