// The studio app (src/app) runs on any host with Web Request/Response: nothing in it, nor in
// anything it imports from this repository, may use `node:` modules, Buffer, `process`, or the
// Node adapter's types; and it imports no host (src/node, src/cloudflare). Checked by walking
// the real import graph from every file of src/app.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const STUDIO = resolve(import.meta.dirname, '../..');
const REPO = resolve(STUDIO, '../..');
const APP = join(STUDIO, 'src/app');

/** Workspace packages the app may import, by the file their import resolves to. */
const WORKSPACE: Record<string, string> = {
  '@studio-worker/protocol': join(REPO, 'packages/protocol/src/index.ts'),
  '@studio-worker/web-kit/pages': join(REPO, 'packages/web-kit/src/pages.ts'),
};
/** Packages from npm the app may import: all run on Web streams (prom-client: see docs/architecture.md). */
const NPM = [/^hono(\/|$)/, /^zod(\/|$)/, /^prom-client$/];
/** Imported for their types only (erased before anything runs). */
const TYPE_ONLY = ['@studio-worker/log'];

function filesIn(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesIn(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every import and export-from specifier of a file, with whether it is `import type`. */
function importsOf(source: string): Array<{ spec: string; typeOnly: boolean }> {
  const found: Array<{ spec: string; typeOnly: boolean }> = [];
  const pattern = /^\s*(import|export)\s+(type\s+)?[^'";]*?\sfrom\s+'([^']+)'|^\s*import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm;
  for (let m = pattern.exec(source); m !== null; m = pattern.exec(source)) found.push({ spec: (m[3] ?? m[4] ?? m[5]) as string, typeOnly: !!m[2] });
  return found;
}

/** Code of a file without its comments (a comment may name Buffer or node: freely). */
function code(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('the studio app is host-agnostic', () => {
  it('no file the app reaches imports node:, a host, or an npm package outside the list; none uses Buffer or process', () => {
    const problems: string[] = [];
    const seen = new Set<string>();
    const queue = filesIn(APP);
    assert.ok(queue.length >= 20, `found the app's files (${queue.length})`);
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      const where = relative(REPO, file);
      const source = readFileSync(file, 'utf8');
      const body = code(source);
      if (/\bBuffer\b/.test(body)) problems.push(`${where} uses Buffer`);
      if (/\bprocess\./.test(body)) problems.push(`${where} uses process`);
      for (const { spec, typeOnly } of importsOf(source)) {
        if (spec.startsWith('node:')) problems.push(`${where} imports ${spec}`);
        else if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec);
          if (/\/src\/(node|cloudflare)\//.test(target)) problems.push(`${where} imports the host file ${relative(REPO, target)}`);
          else if (!typeOnly) queue.push(target);
        } else if (spec in WORKSPACE) queue.push(WORKSPACE[spec] as string);
        else if (TYPE_ONLY.includes(spec)) {
          if (!typeOnly) problems.push(`${where} imports ${spec} for more than its types`);
        } else if (spec.startsWith('@hono/node-server')) problems.push(`${where} imports ${spec}`);
        else if (!NPM.some((allowed) => allowed.test(spec))) problems.push(`${where} imports ${spec}, not on the list of packages that run on every host`);
      }
    }
    assert.ok([...seen].some((f) => f.includes('/src/core/')), 'the walk reached the core');
    assert.deepEqual(problems, []);
  });

  it('the walk catches what it claims to (a planted node: import and a Buffer)', () => {
    assert.deepEqual(importsOf("import { readFile } from 'node:fs/promises';\nimport type { X } from './x.ts';"), [
      { spec: 'node:fs/promises', typeOnly: false },
      { spec: './x.ts', typeOnly: true },
    ]);
    assert.match(code('const b = Buffer.from(x); // Buffer in a comment'), /\bBuffer\b/);
    assert.doesNotMatch(code('/** Buffer */ const b = 1; // no Buffer'), /\bBuffer\b/);
  });
});
