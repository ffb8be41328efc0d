import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareVersionText, isPrerelease, parseVersion } from '../../src/update/semver.ts';

describe('semver', () => {
  it('orders versions and prereleases as semver 2.0 §11 does', () => {
    // The spec's own example chain, then the numeric parts, widest first.
    const ascending = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.1.0',
      '1.2.0',
      '1.10.0',
      '2.0.0',
      '10.0.0',
      // semver's widest number (2^53 - 1); past it a version is refused, see below.
      '9007199254740991.0.0',
    ];
    for (let i = 0; i < ascending.length - 1; i++) {
      const low = ascending[i] as string;
      const high = ascending[i + 1] as string;
      assert.ok(compareVersionText(low, high) < 0, `${low} < ${high}`);
      assert.ok(compareVersionText(high, low) > 0, `${high} > ${low}`);
    }
    const shuffled = [...ascending].reverse();
    shuffled.sort(compareVersionText);
    assert.deepEqual(shuffled, ascending);
  });

  it('ignores build metadata and accepts a leading v', () => {
    assert.equal(compareVersionText('1.2.3+build.5', '1.2.3+other'), 0);
    assert.equal(compareVersionText('v1.2.3', '1.2.3'), 0);
    assert.equal(parseVersion('v1.2.3-rc.1+sha.abc')?.text, '1.2.3-rc.1');
  });

  it('tells prereleases', () => {
    assert.equal(isPrerelease(parseVersion('1.0.0-rc.1')!), true);
    assert.equal(isPrerelease(parseVersion('1.0.0')!), false);
  });

  it('refuses what is not a semantic version', () => {
    for (const text of ['1.2', '1.2.3.4', '01.2.3', '1.02.3', '1.2.3-01', '1.2.3-', '1.2.3-a..b', '1.2.3+', 'latest', '', '1.2.3 -beta', 'studio-worker-v1.2.3', '99999999999999999999.0.0']) {
      assert.equal(parseVersion(text), null, text);
    }
    assert.throws(() => compareVersionText('1.0.0', 'nope'), /not a semantic version: nope/);
  });
});
