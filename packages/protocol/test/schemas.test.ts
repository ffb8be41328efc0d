// The JSON Schema files in packages/protocol/schema are exported from the zod schemas by
// `npm run schemas`; this fails when they no longer match (a schema changed, the files did not).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { buildSchemas, SCHEMA_DIR } from '../scripts/schemas.ts';
import { STUDIO_FRAME_TYPES, WORKER_FRAME_TYPES } from '../src/index.ts';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(SCHEMA_DIR, join(e.parentPath, e.name)))
    .sort();
}

describe('JSON Schema files', () => {
  const expected = buildSchemas();

  it('exist for every frame type, both directions', () => {
    for (const type of WORKER_FRAME_TYPES) assert.ok(expected.has(`worker-to-studio/${type}.json`), type);
    for (const type of STUDIO_FRAME_TYPES) assert.ok(expected.has(`studio-to-worker/${type}.json`), type);
  });

  it('on disk match the zod schemas (run `npm run schemas` after changing a schema)', () => {
    assert.deepEqual(filesUnder(SCHEMA_DIR), [...expected.keys()].sort(), 'the same files');
    for (const [path, text] of expected) {
      assert.equal(readFileSync(join(SCHEMA_DIR, path), 'utf8'), text, `${path} is stale: run npm run schemas`);
    }
  });

  it('say what the original requires of an offer: task and modelSource, and each frame its type', () => {
    const offer = JSON.parse(expected.get('studio-to-worker/offer.json') as string);
    assert.deepEqual(offer.properties.type, { type: 'string', const: 'offer' });
    assert.ok(offer.properties.claim.required.includes('task'));
    assert.ok(offer.properties.claim.required.includes('modelSource'));
  });
});
