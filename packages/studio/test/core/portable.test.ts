// The core runs on both hosts (Node and a Cloudflare Durable Object): no Node built-ins, no Buffer,
// no process, no timers (the host schedules: see Housekeeping), no import of a host.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const CORE = join(import.meta.dirname, '..', '..', 'src', 'core');

/** The code of a file without its comments (a comment may name what the code must not use). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
}

const FORBIDDEN: Array<[RegExp, string]> = [
  [/from\s+['"]node:|import\(\s*['"]node:|require\(/, 'a node: import'],
  [/\bBuffer\b/, 'Buffer (use Uint8Array)'],
  [/\bprocess\s*\./, 'process (the host reads its environment)'],
  [/\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|queueMicrotask)\s*\(/, 'a timer (the host schedules; see Housekeeping)'],
  [/from\s+['"]\.\.\/(node|app|cloudflare)\//, 'an import of a host'],
  [/from\s+['"](ws|hono|@hono\/[^'"]+|busboy|pino|prom-client)['"]/, 'a host library'],
];

describe('the core is portable', () => {
  const files = readdirSync(CORE, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));

  it('reads every core file', () => {
    assert.ok(files.includes('dispatcher.ts') && files.includes('housekeeping.ts') && files.includes('transfer.ts'), files.join(', '));
  });

  for (const file of files) {
    it(`${file} uses nothing host-specific`, () => {
      const text = code(readFileSync(join(CORE, file), 'utf8'));
      for (const [pattern, what] of FORBIDDEN) assert.doesNotMatch(text, pattern, `${file} uses ${what}`);
    });
  }

  it('the check itself catches each forbidden use', () => {
    const samples = ["import { x } from 'node:fs';", 'Buffer.from(x)', 'process.env.X', 'setTimeout(f, 1)', "import { a } from '../node/sqlite.ts';", "import { Hono } from 'hono';"];
    samples.forEach((sample, i) => assert.match(code(sample), (FORBIDDEN[i] as [RegExp, string])[0]));
    assert.doesNotMatch(code('// Buffer and setTimeout( in a comment\nconst url = "https://x";'), /\bBuffer\b|setTimeout\s*\(/);
  });
});
