#!/usr/bin/env node
// Plain JavaScript on purpose: it must run (and explain itself) on a Node too old to run TypeScript.
const major = Number(process.versions.node.split('.')[0]);
if (!(major >= 24)) {
  process.stderr.write('studio-worker needs Node 24+; run it through npm (npm run worker -- …) or install Node 24\n');
  process.exit(1);
}

const { existsSync } = await import('node:fs');
const { pathToFileURL } = await import('node:url');
// Set by the launcher that chose this version, so that the chosen version's own bin runs itself
// instead of deciding (and counting a pending start) a second time. A global, not an environment
// variable: it must not reach the processes the worker starts.
const LAUNCHED = Symbol.for('studio-worker.launched');

// A single-file version started in this process's place (below) finds this mark with its own pid
// (POSIX execve) or its parent's (Windows), and runs itself instead of deciding again.
const LAUNCHED_BY_ENV = 'STUDIO_WORKER_LAUNCHED_BY';
const VERIFYING_ENV = 'STUDIO_WORKER_LAUNCH_VERIFYING';
const launchedBy = process.env[LAUNCHED_BY_ENV];
const verifyingCarried = process.env[VERIFYING_ENV];
delete process.env[LAUNCHED_BY_ENV];
delete process.env[VERIFYING_ENV];
if (launchedBy && (launchedBy === String(process.pid) || launchedBy === String(process.ppid))) {
  globalThis[LAUNCHED] = true;
  if (verifyingCarried) {
    const { watchPendingStart } = await import('../dist/launch.js');
    watchPendingStart(JSON.parse(verifyingCarried), { note: (line) => process.stderr.write(`studio-worker: ${line}\n`) });
  }
}

if (existsSync(new URL('../src/cli/main.ts', import.meta.url))) {
  // A checkout: its own sources, always. Never a stale dist/, never another installed version.
  await import('../src/cli/main.ts');
} else if (globalThis[LAUNCHED]) {
  await import('../dist/cli.js');
} else {
  // A published package (or an installed version started directly): follow versions/current.json,
  // with the one-try-then-roll-back rule of a supervised update (dist/launch.js, src/update/launch.ts).
  globalThis[LAUNCHED] = true;
  const { decideLaunch, watchPendingStart } = await import('../dist/launch.js');
  const launch = await decideLaunch({ args: process.argv.slice(2) });
  const say = (line) => process.stderr.write(`studio-worker: ${line}\n`);
  for (const note of launch.notes) say(note);
  Object.assign(process.env, launch.env);
  if (launch.entry && !/\.[cm]?js$/i.test(launch.entry)) {
    await runExecutable(launch.entry, launch.verifying);
  } else {
    if (launch.verifying) watchPendingStart(launch.verifying, { note: say });
    await import(launch.entry ? pathToFileURL(launch.entry).href : '../dist/cli.js');
  }
}

/**
 * The version to run is a single file (the updater of a single-file worker installed it): it takes
 * this process's place where the OS allows (execve keeps the pid a service manager watches), else
 * it runs as a child whose exit this process passes on.
 */
async function runExecutable(entry, verifying) {
  const env = { ...process.env, [LAUNCHED_BY_ENV]: String(process.pid), ...(verifying ? { [VERIFYING_ENV]: JSON.stringify(verifying) } : {}) };
  const args = process.argv.slice(2);
  if (process.platform !== 'win32' && typeof process.execve === 'function') process.execve(entry, [entry, ...args], env);
  const { spawn } = await import('node:child_process');
  const child = spawn(entry, args, { stdio: 'inherit', env, windowsHide: true });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGBREAK']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`studio-worker: cannot start ${entry}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
