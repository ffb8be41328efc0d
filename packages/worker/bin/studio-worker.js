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
  if (launch.verifying) watchPendingStart(launch.verifying, { note: say });
  await import(launch.entry ? pathToFileURL(launch.entry).href : '../dist/cli.js');
}
