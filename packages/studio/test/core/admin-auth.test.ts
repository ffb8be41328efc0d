import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeHarness } from './harness.ts';

describe('the admin token', () => {
  it('a token that verified once is still checked against the current one: a rotation retires it', () => {
    const h = makeHarness();
    const first = h.core.admin.init(undefined).generated as string;
    assert.ok(first.startsWith('sat_'));
    assert.equal(h.core.admin.verify(first), true);
    assert.equal(h.core.admin.verify(first), true, 'the remembered token still answers');
    assert.equal(h.core.admin.verify(`${first.slice(0, -1)}x`), false, 'one character off');
    assert.equal(h.core.admin.verify(first.slice(0, -1)), false, 'a prefix');
    assert.equal(h.core.admin.verify(`${first}x`), false, 'longer');
    const second = h.core.admin.rotate();
    assert.equal(h.core.admin.verify(first), false, 'the old token is refused after a rotation');
    assert.equal(h.core.admin.verify(second), true);
  });

  it('a token given by the environment replaces a remembered one', () => {
    const h = makeHarness();
    const generated = h.core.admin.init(undefined).generated as string;
    assert.equal(h.core.admin.verify(generated), true);
    h.core.admin.init('sat_from_the_environment');
    assert.equal(h.core.admin.verify(generated), false);
    assert.equal(h.core.admin.verify('sat_from_the_environment'), true);
    assert.equal(h.core.admin.verify(undefined), false);
    assert.equal(h.core.admin.verify(''), false);
  });
});
