// `npm start`: the embedded default. A studio (SQLite + result files under .data/), its dashboard,
// and one local worker process that is approved at once because the same operator started both.
// Remote workers still register and wait for approval.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogRoot } from '@studio-worker/log';
import { startStudio, type RunningStudio } from '@studio-worker/studio/node';
import { EXIT_DISPLACED, EXIT_LOCKED, EXIT_OK, readConfig, saveConfig } from 'studio-worker';

const ROOT = resolve(import.meta.dirname, '..');
const WORKER_BIN = join(ROOT, 'packages', 'worker', 'bin', 'studio-worker.js');
/** How often the launcher looks whether the process that started it is still there. */
const PARENT_POLL_MS = 1_000;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.STUDIO_PORT ?? '4780' },
    host: { type: 'string', default: process.env.STUDIO_HOST ?? '127.0.0.1' },
    'data-dir': { type: 'string', default: process.env.STUDIO_DATA_DIR ?? join(ROOT, '.data') },
    'no-worker': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  process.stdout.write(
    'npm start [-- --port 4780] [--host 127.0.0.1] [--data-dir .data] [--no-worker]\n' +
      '  Runs the studio, its dashboard and one local worker (auto-approved).\n',
  );
  process.exit(0);
}

const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`--port must be a whole number from 0 to 65535 (got "${args.port}")\n`);
  process.exit(2);
}
const dataDir = resolve(args['data-dir'] as string);
const log = createLogRoot({ app: 'studio' });

mkdirSync(dataDir, { recursive: true });
const adminTokenFile = join(dataDir, 'admin-token');
// The launcher is the operator's own tool on their own machine: it keeps the admin token in a
// 0600 file (like the worker keeps its token in config.toml) so the dashboard link works on every
// start. `studio serve` alone stores only the hash and shows a generated token once.
const savedAdminToken = existsSync(adminTokenFile) ? readFileSync(adminTokenFile, 'utf8').trim() : undefined;

const printsLink = process.stdout.isTTY === true;
const shownTokenFile = relative(process.cwd(), adminTokenFile).startsWith('..') ? adminTokenFile : relative(process.cwd(), adminTokenFile);
const signInHint = process.env.STUDIO_ADMIN_TOKEN
  ? 'The token is the STUDIO_ADMIN_TOKEN this studio was started with.'
  : printsLink
    ? `npm start printed a dashboard link with the token; the token is also in ${shownTokenFile}.`
    : `The token is in ${shownTokenFile} (npm start printed no link with it: its output is not a terminal).`;

let studio: RunningStudio;
try {
  studio = await startStudio({
    signInHint,
    dataDir: join(dataDir, 'studio'),
    port,
    host: args.host as string,
    adminToken: process.env.STUDIO_ADMIN_TOKEN || savedAdminToken,
    log: log.root,
  });
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  process.stderr.write(
    code === 'EADDRINUSE'
      ? `port ${port} is in use (another studio, or "npm start" already running?); stop it or pick another: npm start -- --port 4781\n`
      : `the studio did not start: ${(error as Error).message}\n`,
  );
  process.exit(1);
}
if (studio.generatedAdminToken) writeFileSync(adminTokenFile, `${studio.generatedAdminToken}\n`, { mode: 0o600 });
const adminToken = process.env.STUDIO_ADMIN_TOKEN || studio.generatedAdminToken || savedAdminToken;

const workerConfigPath = join(dataDir, 'local-worker', 'config.toml');
const workerId = args['no-worker'] ? undefined : await provisionLocalWorker();

const dashboard = adminToken && printsLink ? `${studio.url}/#token=${adminToken}` : `${studio.url}/ (admin token in ${adminTokenFile})`;
process.stdout.write(
  `\n  studio     ${studio.url}\n  dashboard  ${dashboard}\n` +
    (workerId ? `  worker     ${workerId} (local, config ${workerConfigPath})\n` : '') +
    '  Ctrl-C stops both; the running job is handed back, not failed.\n\n',
);

let worker: ChildProcess | undefined;
let stopping = false;
let restarts = 0;
if (workerId) startWorker();

/**
 * A local worker the studio trusts without the approval round trip: create (or re-key) it in the
 * studio and write its credentials into its config, keeping everything else the operator set there.
 */
async function provisionLocalWorker(): Promise<string> {
  const { config } = await readConfig(workerConfigPath);
  const existing = config.workerId ? studio.core.stores.workers.get(config.workerId) : undefined;
  const tokenMatches =
    existing &&
    existing.deleted_at === null &&
    config.authToken !== undefined &&
    existing.token_hash === createHash('sha256').update(config.authToken).digest('hex');
  let credentials = { workerId: config.workerId as string, authToken: config.authToken as string };
  if (!tokenMatches) {
    if (existing && existing.deleted_at === null) {
      const rotated = studio.core.registration.rotateToken(existing.id);
      if (!rotated.ok) throw new Error(rotated.error.message);
      credentials = rotated.value;
    } else {
      credentials = studio.core.registration.createApprovedWorker('local worker', hostname());
    }
  }
  await saveConfig(workerConfigPath, {
    ...config,
    apiBaseUrl: `${studio.url}/`,
    workerId: credentials.workerId,
    authToken: credentials.authToken,
    registrationRequestId: undefined,
    registrationSecret: undefined,
  });
  return credentials.workerId;
}

function startWorker(): void {
  const child = spawn(process.execPath, [WORKER_BIN, 'run', '--config', workerConfigPath], {
    stdio: 'inherit',
    // The worker stops by itself if this launcher dies without forwarding a signal (kill -9).
    env: { ...process.env, STUDIO_WORKER_EXIT_WITH_PARENT: '1' },
  });
  worker = child;
  const started = Date.now();
  child.on('exit', (code, signal) => {
    worker = undefined;
    if (stopping) return;
    if (code === EXIT_LOCKED) {
      process.stderr.write(`the local worker is already running from ${workerConfigPath} (another npm start?); not starting a second one\n`);
      return;
    }
    if (code === EXIT_DISPLACED) {
      process.stderr.write(`the local worker stopped: another process connected with its worker id (see ${workerConfigPath}); not restarting it, the studio keeps running\n`);
      return;
    }
    if (code === EXIT_OK || signal === 'SIGTERM' || signal === 'SIGINT') {
      // Someone stopped the worker on purpose (kill, a supervisor): the whole launcher stops with it.
      void stop(`worker ${signal ?? `exit ${code}`}`);
      return;
    }
    // A crash loop must not spin: back off, and reset once a run lasted a minute.
    if (Date.now() - started > 60_000) restarts = 0;
    const delay = Math.min(1000 * 2 ** restarts++, 30_000);
    log.root.warn({ op: 'local_worker', code, signal, restartInMs: delay }, 'local worker exited; restarting');
    setTimeout(() => !stopping && startWorker(), delay).unref();
  });
}

/**
 * A repeat signal within this window is the same request arriving twice (Ctrl-C reaches the whole
 * process group and npm forwards its own copy a moment later), not an impatient second one.
 */
const REPEAT_SIGNAL_WINDOW_MS = 500;
let stoppingSince = 0;

function onSignal(signal: NodeJS.Signals): void {
  if (stopping) {
    if (performance.now() - stoppingSince < REPEAT_SIGNAL_WINDOW_MS) return;
    process.stderr.write('second signal: exiting now\n');
    worker?.kill('SIGKILL');
    process.exit(1);
  }
  void stop(signal);
}

async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  stoppingSince = performance.now();
  log.root.info({ op: 'shutdown', signal }, 'stopping the local worker, then the studio');
  const child = worker;
  if (child && child.exitCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    // The worker's own grace period is 5 s by default; give it a little more before insisting.
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await studio.close();
  process.exit(0);
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// A closed terminal.
process.on('SIGHUP', onSignal);

// The process that started us is gone (npm or a shell killed without forwarding a signal): we were
// re-parented, and nobody is left to stop us. Stop as if told to.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stop('parent_gone');
}, PARENT_POLL_MS).unref();
