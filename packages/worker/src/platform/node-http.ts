/**
 * node:http as CommonJS sees it, for every value the worker takes from it (types still come from
 * `import type … from 'node:http'`, which is erased).
 *
 * Why not `import { request } from 'node:http'`: on Node 24 an ES module import of a built-in
 * builds an ES module facade of it, and that facade reads every export at once. node:http's
 * `WebSocket`, `CloseEvent` and `MessageEvent` exports are lazy getters into undici, so one such
 * import loads undici and what undici loads (http2, zlib, perf_hooks, worker_threads, web streams):
 * 13.5 MB more resident memory in a bare `node -e` (45.8 → 59.3 MB; 1.5–2.5 MB in the idle daemon,
 * whose other packages load part of that anyway: bench/README.md, "npm run bench:idle"), kept for
 * good by a daemon that never uses any of it. `process.getBuiltinModule` hands over the module
 * object itself and reads nothing until asked. bench:idle's `unneededModules` (and its test) fails
 * if an idle daemon loads undici again, whoever imports it.
 */
export const http: typeof import('node:http') = process.getBuiltinModule('node:http');
