// PM2 dev loop: `npx pm2 start ecosystem.config.cjs --only studio,worker-watch` (see
// docs/operations/dev-loop.md). Three apps:
//   studio        the studio (`studio serve`), data under .data/studio
//   worker-watch  the worker under node's own watcher: a change under packages/ SIGTERMs the daemon
//                 (it hands its running job back to the studio) and starts it again
//   worker        the stable variant: the built bundle (packages/worker/dist, `npm run build`), no
//                 watcher, for chewing through a queue while the sources change under it
// Both worker apps use ONE config (one worker id) on purpose: run one of them at a time. A second
// one finds the daemon lock taken and exits 3, and `stop_exit_codes: [3, 5]` keeps PM2 from restarting
// it, so the two can never fight over the worker id.
//
// Overrides (read when PM2 loads this file): STUDIO_DEV_DATA_DIR (default .data), STUDIO_PORT (4780),
// STUDIO_DEV_WATCH_PATH (packages), STUDIO_ADMIN_TOKEN (default: the token in <data>/admin-token,
// created on first use, shared with `npm start`).
'use strict';
const { randomBytes } = require('node:crypto');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const ROOT = __dirname;
// The project's pinned Node 24 (the `node` dev dependency), whatever `node` is on PATH.
const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');
const DATA = path.resolve(ROOT, process.env.STUDIO_DEV_DATA_DIR || '.data');
const LOGS = path.join(DATA, 'logs');
const PORT = process.env.STUDIO_PORT || '4780';
const WATCH_PATH = path.resolve(ROOT, process.env.STUDIO_DEV_WATCH_PATH || 'packages');
const WORKER_CONFIG = path.join(DATA, 'dev-worker', 'config.toml');
const WORKER_BIN = path.join(ROOT, 'packages', 'worker', 'bin', 'studio-worker.js');
// What `npm run build` writes: the CLI bundle, which runs the same code whatever the sources become.
const WORKER_BUILT = path.join(ROOT, 'packages', 'worker', 'dist', 'cli.js');
// Above the worker's shutdown grace (shutdown_grace_secs, 5 s) plus the outbox flush (3 s): PM2's
// SIGKILL must only ever hit a daemon that is really stuck.
const WORKER_KILL_TIMEOUT_MS = 15000;

/** The admin token the studio starts with, so `scripts/dev-worker.ts` and the dashboard can use it. */
function adminToken() {
  if (process.env.STUDIO_ADMIN_TOKEN) return process.env.STUDIO_ADMIN_TOKEN;
  const file = path.join(DATA, 'admin-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(DATA, { recursive: true });
  const token = randomBytes(24).toString('hex');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

mkdirSync(LOGS, { recursive: true });
const logs = (name) => ({
  out_file: path.join(LOGS, `${name}.out.log`),
  error_file: path.join(LOGS, `${name}.err.log`),
  merge_logs: true,
});

const worker = (name, script, nodeArgs) => ({
  name,
  cwd: ROOT,
  script,
  args: ['run', '--config', WORKER_CONFIG],
  interpreter: NODE,
  node_args: nodeArgs,
  // PM2's own watcher stays off: node's watcher restarts only the daemon, inside one PM2 process.
  watch: false,
  autorestart: true,
  // 3 = another daemon holds the lock for this config (the other flavour runs); 5 = displaced by a
  // newer process with the same worker id (close 4003): stay stopped, or the two would take turns.
  stop_exit_codes: [3, 5],
  kill_timeout: WORKER_KILL_TIMEOUT_MS,
  // Only the top process gets PM2's signal: the daemon stops its own engines after handing the job
  // back. A tree kill would signal the engine processes at the same moment and fail their job.
  treekill: false,
  env: { STUDIO_WORKER_LOG: process.env.STUDIO_WORKER_LOG || 'info', NO_PRETTY_LOGS: '1' },
  ...logs(name),
});

module.exports = {
  apps: [
    {
      name: 'studio',
      cwd: ROOT,
      script: path.join(ROOT, 'packages', 'studio', 'bin', 'studio.js'),
      args: ['serve', '--port', PORT, '--host', '127.0.0.1', '--data-dir', path.join(DATA, 'studio')],
      interpreter: NODE,
      watch: false,
      autorestart: true,
      kill_timeout: 10000,
      restart_delay: 2000,
      env: { STUDIO_ADMIN_TOKEN: adminToken(), STUDIO_WORKER_LOG: process.env.STUDIO_WORKER_LOG || 'info', NO_PRETTY_LOGS: '1' },
      ...logs('studio'),
    },
    worker('worker-watch', WORKER_BIN, [`--watch-path=${WATCH_PATH}`, '--watch-preserve-output']),
    // Missing until `npm run build` has run: PM2 then says "Script not found: …/dist/cli.js".
    worker('worker', WORKER_BUILT, []),
  ],
};
