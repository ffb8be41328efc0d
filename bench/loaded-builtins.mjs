/**
 * Preloaded into a worker daemon by bench:idle (`node --import`): when the daemon exits, writes the
 * built-in modules it loaded (`process.moduleLoadList`, one per line) to the file named by
 * BENCH_LOADED_BUILTINS_FILE. How the bench sees what no /proc file shows: which of node's own
 * JavaScript modules an idle daemon paid for (idle-worker.ts, `unneededModules`).
 *
 * Plain JavaScript, unlike the rest of bench/: a preloaded .ts file would switch on Node's type
 * stripping inside the daemon and add some 10 MB to the very figure the bench measures.
 */
const file = process.env.BENCH_LOADED_BUILTINS_FILE;
if (file) {
  // Undocumented but in every Node since 0.x (`node -p process.moduleLoadList`); the live list.
  const loaded = process.moduleLoadList;
  process.on('exit', () => {
    process.getBuiltinModule('node:fs').writeFileSync(file, `${loaded.join('\n')}\n`);
  });
}
