import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withMetaTags } from '../src/index.ts';

test('withMetaTags: adds the tags to the head, escaped (a path cannot close the attribute or the tag)', () => {
  const page = '<!doctype html><html><head><title>x</title></head><body></body></html>';
  const out = withMetaTags(page, { 'studio-sign-in-hint': 'The token is in /tmp/a "b" <c> & \'d\'' });
  assert.equal(
    out,
    '<!doctype html><html><head><title>x</title><meta name="studio-sign-in-hint" content="The token is in /tmp/a &#34;b&#34; &#60;c&#62; &#38; &#39;d&#39;"></head><body></body></html>',
  );
});
