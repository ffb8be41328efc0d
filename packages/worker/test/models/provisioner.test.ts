import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { silentLogger } from '@studio-worker/log';
import { ModelFileFailure, ModelProvisioner, modelDirName, sanitiseModelId } from '../../src/models/index.ts';
import { serveFile } from './file-server.ts';
import { MODEL_DIR_NAME, MODEL_ID, USER_AGENT, context, fixture, modelPath, progressRecorder } from './setup.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function rejection(promise: Promise<unknown>): Promise<ModelFileFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ModelFileFailure, `expected a ModelFileFailure, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the promise to reject');
}

/** A fetch that fails the test if anything tries to use the network. */
function forbiddenFetch(): typeof fetch & { calls: number } {
  const spy = Object.assign(
    async () => {
      spy.calls++;
      throw new Error('no request may be made here');
    },
    { calls: 0 },
  );
  return spy as unknown as typeof fetch & { calls: number };
}

test('sanitiseModelId: outside [A-Za-z0-9._-] becomes _, a leading dot becomes _', () => {
  assert.equal(sanitiseModelId('acme/z-image:q4'), 'acme_z-image_q4');
  assert.equal(sanitiseModelId('z-image-turbo-q4_k_m.gguf'), 'z-image-turbo-q4_k_m.gguf');
  assert.equal(sanitiseModelId('.hidden'), '_hidden');
  assert.equal(sanitiseModelId('..'), '_.');
  assert.equal(sanitiseModelId('../../etc'), '_._.._etc');
  assert.equal(sanitiseModelId('ü b\\c'), '__b_c');
});

test('model folder names are injective: plain lowercase ids keep their name, any other id gets a hash of the raw id', () => {
  // Fixed values: changing the mapping would orphan every download made under it.
  assert.equal(modelDirName('z-image-turbo-q4_k_m.gguf'), 'z-image-turbo-q4_k_m.gguf');
  assert.equal(modelDirName('coll_x'), 'coll_x');
  assert.equal(modelDirName(MODEL_ID), MODEL_DIR_NAME);
  assert.equal(MODEL_DIR_NAME, `acme_z-image_q4~${sha256(Buffer.from(MODEL_ID)).slice(0, 16)}`);
  const ids = ['coll_X', 'coll:X', 'coll/X', 'coll_x', 'COLL_X', 'Coll_x', 'con', 'CON', 'nul.txt', 'a.', 'a', '.hidden', '_hidden', '..', 'ü b\\c', '__b_c', 'x'.repeat(300), `${'x'.repeat(300)}y`];
  const names = ids.map(modelDirName);
  assert.equal(new Set(names).size, ids.length, 'no two ids share a folder');
  // Case-insensitive filesystems (macOS, Windows) fold case: still no two names may meet.
  assert.equal(new Set(names.map((name) => name.toLowerCase())).size, ids.length, 'no two names differ only in case');
  for (const name of names) {
    assert.match(name, /^[A-Za-z0-9_][A-Za-z0-9._~-]*$/, name);
    assert.ok(name.length <= 120, name);
    assert.ok(!name.endsWith('.'), name);
  }
});

test('ids coll_X and coll:X keep their own files: removing one leaves the other', async (t) => {
  const { root, provisioner, file } = await fixture(t);
  const [a] = await provisioner.ensure('coll_X', [file()], context());
  const [b] = await provisioner.ensure('coll:X', [file()], context());
  assert.ok(a && b);
  assert.notEqual(dirname(a.path), dirname(b.path));
  await provisioner.remove('coll:X');
  assert.equal(existsSync(b.path), false);
  assert.ok(existsSync(a.path), 'the other model\'s file is still there');
  assert.equal(await provisioner.isReady('coll_X', [file()]), true);
  assert.equal(await provisioner.isReady('coll:X', [file()]), false);
  assert.equal(existsSync(join(root, 'coll_X')), false, 'an id with capitals is hashed too (case-insensitive filesystems)');
});

test('a verified download in the folder an earlier version used is moved to the new folder, not downloaded again', async (t) => {
  const { root, server, provisioner, file, restart } = await fixture(t);
  // An earlier version stored MODEL_ID under its sanitised name alone.
  const [first] = await provisioner.ensure(MODEL_ID, [file()], context());
  assert.ok(first);
  const oldDir = join(root, sanitiseModelId(MODEL_ID));
  await mkdir(oldDir, { recursive: true });
  const { rename } = await import('node:fs/promises');
  for (const name of ['model.bin', 'model.bin.verified']) await rename(join(root, MODEL_DIR_NAME, name), join(oldDir, name));
  const requests = server.requests.length;

  const later = restart();
  assert.equal(await later.isReady(MODEL_ID, [file()]), true, 'found where it was');
  const [found] = await later.ensure(MODEL_ID, [file()], context());
  assert.equal(found?.path, modelPath(root));
  assert.equal(existsSync(join(oldDir, 'model.bin')), false, 'moved, not copied');
  assert.equal(server.requests.length, requests, 'no download');
  await later.remove(MODEL_ID);
  assert.equal(existsSync(modelPath(root)), false);
  assert.equal(await later.isReady(MODEL_ID, [file()]), false, 'nothing left behind that still counts as this model');
});

test('file names that are not plain names are refused before any request or file', async (t) => {
  const fetch = forbiddenFetch();
  const { root, provisioner, file } = await fixture(t, { fetch });
  for (const filename of ['../model.bin', 'a/b.bin', 'a\\b.bin', '..', '.', '/etc/passwd', 'evil..bin', 'model.bin.part', 'model.bin.verified', '']) {
    const failure = await rejection(provisioner.ensure(MODEL_ID, [file({ filename })], context()));
    assert.equal(failure.kind, 'bad_name', filename);
    assert.equal(failure.retryable, false);
    assert.match(failure.message, /plain name|refused/, filename);
  }
  // A bad name anywhere in the list stops the whole call before the good files are fetched.
  const failure = await rejection(provisioner.ensure(MODEL_ID, [file(), file({ filename: '../x' })], context()));
  assert.equal(failure.kind, 'bad_name');
  assert.equal(fetch.calls, 0);
  assert.equal(existsSync(root), false, 'nothing was created');
  assert.equal(await provisioner.isReady(MODEL_ID, [file({ filename: '../model.bin' })]), false);
});

test('http to a non-loopback host, ftp and file URLs are refused without a request, saying why', async (t) => {
  const fetch = forbiddenFetch();
  const { provisioner, file } = await fixture(t, { fetch });
  const cases: Array<[string, RegExp]> = [
    ['http://models.example.com/model.bin', /uses plain http to a remote host; model files are only fetched over https/],
    ['http://10.0.0.5:8080/model.bin', /plain http to a remote host/],
    ['ftp://models.example.com/model.bin', /uses ftp; model files are only fetched over https/],
    ['file:///etc/passwd', /uses file; model files are only fetched over https/],
    ['not a url', /is not a URL/],
  ];
  for (const [url, reason] of cases) {
    const failure = await rejection(provisioner.ensure(MODEL_ID, [file({ url })], context()));
    assert.equal(failure.kind, 'bad_url', url);
    assert.equal(failure.retryable, false);
    assert.match(failure.message, reason, url);
  }
  assert.equal(fetch.calls, 0);
});

test('loopback http is refused by default: https only unless allowLoopbackHttp is set', async (t) => {
  const { server, provisioner, file } = await fixture(t, { allowLoopbackHttp: undefined });
  const failure = await rejection(provisioner.ensure(MODEL_ID, [file()], context()));
  assert.equal(failure.kind, 'bad_url');
  assert.equal(failure.retryable, false);
  assert.match(failure.message, /uses plain http; this worker only fetches model files over https \(allow_loopback_http = true allows loopback mirrors\)/);
  assert.equal(server.requests.length, 0);
});

test('loopback http is refused too when allowLoopbackHttp is false', async (t) => {
  const { server, provisioner, file } = await fixture(t, { allowLoopbackHttp: false });
  const failure = await rejection(provisioner.ensure(MODEL_ID, [file()], context()));
  assert.equal(failure.kind, 'bad_url');
  assert.match(failure.message, /uses plain http; this worker only fetches model files over https/);
  assert.equal(server.requests.length, 0);
});

test('disk preflight: too little space fails with both numbers and makes no request', async (t) => {
  const seen: string[] = [];
  const freeBytes = async (dir: string) => {
    seen.push(dir);
    return 1.2e9;
  };
  const { root, server, provisioner, file } = await fixture(t, { freeBytes });
  const failure = await rejection(provisioner.ensure(MODEL_ID, [file({ approxBytes: 4e9, sha256: undefined })], context()));
  const modelDir = join(root, MODEL_DIR_NAME);
  assert.equal(failure.kind, 'disk_space');
  assert.equal(failure.retryable, true);
  assert.equal(failure.message, `"model.bin" needs 4.4 GB free in ${modelDir}, 1.2 GB available; free some space or point models_root at a bigger disk`);
  assert.deepEqual(seen, [modelDir]);
  assert.equal(server.requests.length, 0);

  // Bytes already in the .part count towards the file: 4.4 GB − 1.0 GB = 3.4 GB still needed.
  await writeFile(`${modelPath(root)}.part`, '');
  await truncate(`${modelPath(root)}.part`, 1e9); // sparse: no real disk used
  const second = await rejection(provisioner.ensure(MODEL_ID, [file({ approxBytes: 4e9, sha256: undefined })], context()));
  assert.match(second.message, /needs 3\.4 GB free in .*, 1\.2 GB available/);
  assert.equal(second.fromCache, false, 'a full disk is not the source\'s fault and is not cached');
  assert.equal(server.requests.length, 0);
});

test('enough space: the preflight passes and the download runs', async (t) => {
  const { server, provisioner, file } = await fixture(t, { freeBytes: async () => 10e9 });
  await provisioner.ensure(MODEL_ID, [file()], context());
  assert.equal(server.requests.length, 1);
});

test('a verified file is neither downloaded nor re-hashed after a restart; a touched one is checked again', async (t) => {
  const { root, server, provisioner, file, restart } = await fixture(t);
  await provisioner.ensure(MODEL_ID, [file()], context());
  const dest = modelPath(root);
  const before = statSync(dest);

  // Corrupt the bytes but keep size and mtime: only a re-hash could notice.
  const handle = await open(dest, 'r+');
  await handle.write(Buffer.alloc(16, 0), 0, 16, 1000);
  await handle.close();
  // The same millisecond (what the record keeps), set mid-millisecond: a Date would land exactly on
  // the boundary, where the seconds-as-double conversion can fall to the millisecond below.
  await utimes(dest, before.atime, (Math.trunc(before.mtimeMs) + 0.5) / 1000);

  const fresh = restart();
  assert.equal(await fresh.isReady(MODEL_ID, [file()]), true, 'isReady reads the record');
  const recorder = progressRecorder();
  const resolved = await fresh.ensure(MODEL_ID, [file()], context(undefined, recorder.progress));
  assert.equal(resolved[0]?.path, dest);
  assert.equal(server.requests.length, 1, 'not downloaded again');
  assert.equal(recorder.updates.length, 0, 'not even a "checking" pass');
  assert.notEqual(sha256(await readFile(dest)), server.sha256, 'the corruption went unnoticed: proof nothing re-hashed it');

  // A new mtime voids the record: the file is hashed, found wrong, and replaced.
  await utimes(dest, before.atime, new Date(before.mtimeMs + 5000));
  const again = restart();
  assert.equal(await again.isReady(MODEL_ID, [file()]), false);
  await again.ensure(MODEL_ID, [file()], context());
  assert.equal(server.requests.length, 2);
  assert.equal(sha256(await readFile(dest)), server.sha256);
});

test('a file that is there without a record is hashed once, recorded, and used (no download)', async (t) => {
  const { root, server, provisioner, file } = await fixture(t);
  const dest = modelPath(root);
  await mkdir(dirname(dest), { recursive: true });
  await writeFile(dest, server.content);
  assert.equal(await provisioner.isReady(MODEL_ID, [file()]), false, 'isReady never hashes');
  const recorder = progressRecorder();
  await provisioner.ensure(MODEL_ID, [file()], context(undefined, recorder.progress));
  assert.equal(server.requests.length, 0);
  assert.match(recorder.updates[0]?.message ?? '', /^model\.bin checking /);
  assert.ok(existsSync(`${dest}.verified`));
  assert.equal(await provisioner.isReady(MODEL_ID, [file()]), true);
});

test('legacy flat path: the right file at <models_root>/<filename> is used in place; a wrong one is not', async (t) => {
  const { root, server, provisioner, file } = await fixture(t);
  const legacy = join(root, 'model.bin');
  await mkdir(root, { recursive: true });
  await writeFile(legacy, server.content);

  const [resolved] = await provisioner.ensure(MODEL_ID, [file()], context());
  assert.equal(resolved?.path, legacy);
  assert.equal(server.requests.length, 0);
  assert.equal(existsSync(modelPath(root)), false, 'not copied into the model dir');
  assert.equal(await provisioner.isReady(MODEL_ID, [file()]), true);

  // Without a sha256 the size must equal approxBytes exactly.
  const noPin = file({ filename: 'other.bin', sha256: undefined });
  await writeFile(join(root, 'other.bin'), server.content);
  assert.equal(await provisioner.isReady(MODEL_ID, [noPin]), true);
  assert.equal((await provisioner.ensure(MODEL_ID, [noPin], context()))[0]?.path, join(root, 'other.bin'));
  assert.equal(server.requests.length, 0);

  // Same name, different bytes: ignored, and the real file is downloaded into the model dir.
  await writeFile(join(root, 'third.bin'), Buffer.alloc(server.content.length, 1));
  const [third] = await provisioner.ensure(MODEL_ID, [file({ filename: 'third.bin' })], context());
  assert.equal(third?.path, modelPath(root, 'third.bin'));
  assert.equal(server.requests.length, 1);
  assert.equal(sha256(await readFile(third!.path)), server.sha256);
});

test('ensure answers every file in source order, downloading one at a time per model', async (t) => {
  const { root, server, provisioner, file } = await fixture(t);
  let active = 0;
  let most = 0;
  server.observe = () => {
    active++;
    most = Math.max(most, active);
    return undefined;
  };
  // Paced, so a download lasts long enough that a second one at the same time would overlap it.
  const base = serveFile({ pace: { chunkBytes: 256 * 1024, everyMs: 5 } });
  server.fallback = (req, res, content) => {
    res.on('close', () => active--);
    base(req, res, content);
  };
  const files = [file({ role: 'diffusion-model', filename: 'unet.gguf' }), file({ role: 'vae', filename: 'vae.safetensors' }), file({ role: 'text-encoder', filename: 'te.gguf' })];
  // Two callers for the same model with different files at the same time.
  const [all, one] = await Promise.all([provisioner.ensure(MODEL_ID, files, context()), provisioner.ensure(MODEL_ID, [file({ role: 'lora', filename: 'style.safetensors' })], context())]);
  assert.deepEqual(
    all.map((f) => [f.role, f.filename, f.path]),
    [
      ['diffusion-model', 'unet.gguf', modelPath(root, 'unet.gguf')],
      ['vae', 'vae.safetensors', modelPath(root, 'vae.safetensors')],
      ['text-encoder', 'te.gguf', modelPath(root, 'te.gguf')],
    ],
  );
  assert.equal(one[0]?.path, modelPath(root, 'style.safetensors'));
  assert.equal(server.requests.length, 4);
  assert.equal(most, 1, 'never two downloads for one model at once');
  assert.equal(await provisioner.isReady(MODEL_ID, files), true);
  assert.equal(await provisioner.isReady(MODEL_ID, [...files, file({ filename: 'missing.bin' })]), false);
});

test('a model without files is ready and resolves to nothing', async (t) => {
  const { provisioner } = await fixture(t, { fetch: forbiddenFetch() });
  assert.deepEqual(await provisioner.ensure('synthetic-image', [], context()), []);
  assert.equal(await provisioner.isReady('synthetic-image', []), true);
});

test('list() shows files per model dir without partials or records; remove() deletes one model', async (t) => {
  const { root, server, provisioner, file } = await fixture(t);
  assert.deepEqual(await provisioner.list(), [], 'an absent models root lists nothing');
  await provisioner.ensure(MODEL_ID, [file()], context());
  await provisioner.ensure('other', [file({ filename: 'b.gguf' })], context());
  await writeFile(join(root, 'other', 'c.gguf.part'), 'partial');
  await writeFile(join(root, 'loose.gguf'), 'xyz');

  assert.deepEqual(await provisioner.list(), [
    { modelDir: root, files: [{ name: 'loose.gguf', bytes: 3 }] },
    { modelDir: join(root, MODEL_DIR_NAME), files: [{ name: 'model.bin', bytes: server.content.length }] },
    { modelDir: join(root, 'other'), files: [{ name: 'b.gguf', bytes: server.content.length }] },
  ]);

  await provisioner.remove('other');
  assert.equal(existsSync(join(root, 'other')), false);
  assert.ok(existsSync(modelPath(root)), 'other models stay');
  assert.ok(existsSync(join(root, 'loose.gguf')), 'flat files stay');
  assert.equal(await provisioner.isReady('other', [file({ filename: 'b.gguf' })]), false);
  await assert.rejects(provisioner.remove(''), /model id is empty/);
});

test('remove() stops a running download of that model first', async (t) => {
  const { root, server, provisioner, file } = await fixture(t);
  const { stallAfter } = await import('./file-server.ts');
  server.script(stallAfter(64 * 1024));
  const recorder = progressRecorder();
  const download = provisioner.ensure(MODEL_ID, [file()], context(undefined, recorder.progress));
  await recorder.waitFor((u) => (u.step ?? 0) > 0, 'the first body bytes');
  const outcome = rejection(download);
  await provisioner.remove(MODEL_ID);
  const failure = await outcome;
  assert.equal(failure.code, 'cancelled');
  assert.match(failure.message, /model removed/);
  assert.equal(existsSync(join(root, MODEL_DIR_NAME)), false);
});

test('the default freeBytes reads the real filesystem', async (t) => {
  // A file larger than any disk: the real statfs must refuse it before a request.
  const { server, provisioner, file } = await fixture(t);
  const failure = await rejection(provisioner.ensure(MODEL_ID, [file({ approxBytes: 1e18, sha256: undefined })], context()));
  assert.equal(failure.kind, 'disk_space');
  assert.match(failure.message, /needs 1100 PB free in .*, [\d.]+ [kMGT]?B available/);
  assert.equal(server.requests.length, 0);
});

test('a models root that cannot be created fails with a local error that says where', async (t) => {
  const { root } = await fixture(t);
  // A regular file where a directory should be (permissions would not stop a root test run).
  await mkdir(dirname(root), { recursive: true });
  const blocker = join(dirname(root), 'not-a-dir');
  await writeFile(blocker, '');
  const provisioner = new ModelProvisioner({ modelsRoot: join(blocker, 'models'), log: silentLogger, userAgent: USER_AGENT, fetch: forbiddenFetch() });
  const failure = await rejection(provisioner.ensure(MODEL_ID, [{ role: 'model', url: 'https://models.example.com/x.bin', filename: 'x.bin' }], context()));
  assert.equal(failure.kind, 'local_io');
  assert.equal(failure.retryable, true);
  assert.match(failure.message, new RegExp(`cannot create ${blocker}/models/${MODEL_DIR_NAME}: .*; check models_root in config\\.toml`));
});
