// The package's entry under Node (plain JavaScript, as the worker's index.js): the TypeScript
// sources in a checkout, the bundle in dist/ once installed (Node does not strip types under
// node_modules). Browsers, Workers and bundlers take dist/index.js directly (package.json "exports").
import { existsSync } from 'node:fs';

const api = await import(existsSync(new URL('./src/index.ts', import.meta.url)) ? './src/index.ts' : './dist/index.js');

// The names of src/index.ts (test/release/release.test.ts checks that the lists agree).
export const { StudioApiError, StudioClient } = api;
