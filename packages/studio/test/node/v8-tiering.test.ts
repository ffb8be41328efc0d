// src/node/v8-tiering.ts lowers V8's tier-up counts at run time. The claim its comment makes, that
// setting them after start takes effect, is held here against V8 itself: a child node runs one
// small function and writes a mark every 25 calls on the same file descriptor as `--trace-opt`'s
// lines, so the output says after how many calls V8 marked the function for Maglev.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TIERING_FLAGS, tierUpSooner } from '../../src/node/v8-tiering.ts';

const MODULE = pathToFileURL(join(import.meta.dirname, '../../src/node/v8-tiering.ts')).href;
const CALLS = 300;

/** The calls made before V8 marked the probe for optimization (a multiple of 25), or undefined if it never did. */
function markedAfter(options: { tierUpSooner: boolean; nodeFlags?: string[] }): number | undefined {
  const script = `
    import { writeSync } from 'node:fs';
    const { tierUpSooner } = await import(${JSON.stringify(MODULE)});
    ${options.tierUpSooner ? 'tierUpSooner();' : ''}
    function probeTarget(o) { return o.a * 2 + o.b.length; }
    const o = { a: 1, b: 'xy' };
    for (let i = 1; i <= ${CALLS}; i++) { probeTarget(o); if (i % 25 === 0) writeSync(1, 'calls ' + i + '\\n'); }
  `;
  const out = execFileSync(process.execPath, [...(options.nodeFlags ?? []), '--trace-opt', '--input-type=module', '-e', script], { encoding: 'utf8' });
  let calls = 0;
  for (const line of out.split('\n')) {
    const mark = /^calls (\d+)$/.exec(line);
    if (mark) calls = Number(mark[1]);
    else if (line.includes('marking') && line.includes('probeTarget')) return calls;
  }
  return undefined;
}

describe('tierUpSooner (V8 tier-up counts)', () => {
  it('without it, V8 leaves a function unoptimized for its first 300 calls (what the probe measures)', () => {
    assert.equal(markedAfter({ tierUpSooner: false }), undefined);
  });

  it('with it, set after node started, V8 marks the same function for Maglev within 150 calls', () => {
    const calls = markedAfter({ tierUpSooner: true });
    assert.ok(calls !== undefined && calls <= 150, `marked after ${calls} calls`);
  });

  it('leaves a count the operator gave node on its command line (either spelling), and sets the other', () => {
    assert.deepEqual(tierUpSooner(['--invocation_count_for_maglev=1000', '--minimum-invocations-after-ic-update=7']), []);
    // Only the Maglev count given: it sets the other one (in this test process too, as a studio would).
    assert.deepEqual(tierUpSooner(['--invocation-count-for-maglev=1000']), TIERING_FLAGS.filter((flag) => flag.startsWith('--minimum-')));
    assert.equal(markedAfter({ tierUpSooner: true, nodeFlags: ['--invocation-count-for-maglev=1000'] }), undefined);
  });
});
