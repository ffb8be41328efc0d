// The studio's SQL lives in its stores (core/*-store.ts) and the schema (core/schema.ts), nowhere
// else in core/: services get a `Stores` object and call its methods. This reads the source as
// text, like the check that keeps `node:` out of core/, so a statement pasted into a service fails
// here before review.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const CORE = join(import.meta.dirname, '../../src/core');
const SQL = /\b(SELECT|INSERT|UPDATE|DELETE)\b/;

/** Whether a core file may hold SQL: a store, or the schema's migrations. */
const mayHoldSql = (file: string) => file.endsWith('-store.ts') || file === 'schema.ts';

/** The string and template literals of a TypeScript source, comments skipped. */
function stringsIn(source: string): string[] {
  const found: string[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      i = source.indexOf('\n', i);
      if (i < 0) break;
    } else if (c === '/' && next === '*') {
      i = source.indexOf('*/', i + 2) + 2;
      if (i < 2) break;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j += source[j] === '\\' ? 2 : 1;
      found.push(source.slice(i + 1, j));
      i = j + 1;
    } else i++;
  }
  return found;
}

const sqlIn = (file: string) => stringsIn(readFileSync(join(CORE, file), 'utf8')).filter((s) => SQL.test(s));
const coreFiles = readdirSync(CORE).filter((f) => f.endsWith('.ts'));

describe('SQL only in the stores', () => {
  it('finds SQL in strings and not in comments (the check can fail)', () => {
    assert.deepEqual(
      stringsIn("// SELECT in a comment\nconst a = 'SELECT 1'; /* DELETE */ const b = `UPDATE t SET x = ${1}`; const c = \"it's fine\";").filter((s) => SQL.test(s)),
      ['SELECT 1', 'UPDATE t SET x = ${1}'],
    );
    for (const store of ['job-store.ts', 'worker-store.ts', 'worker-log-store.ts', 'model-store.ts', 'registration-store.ts']) {
      assert.ok(sqlIn(store).length > 0, `${store} holds statements the check sees`);
    }
  });

  it('no core file outside the stores and the schema holds a statement', () => {
    const offenders = coreFiles.filter((f) => !mayHoldSql(f)).flatMap((f) => sqlIn(f).map((s) => `${f}: ${s.slice(0, 80)}`));
    assert.deepEqual(offenders, [], 'move these statements into a store (core/*-store.ts) and call it through Stores');
  });
});
