import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { UpdateError } from '../../src/update/errors.ts';
import { extractTarGz, listTarGz } from '../../src/update/tar.ts';
import { tarGz, type TarInput } from './helpers/tarball.ts';

describe('tar reader', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-tar-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function extract(name: string, entries: readonly TarInput[] | Buffer): Promise<{ dest: string; result: Promise<{ files: number }> }> {
    const archive = join(dir, `${name}.tgz`);
    await writeFile(archive, Buffer.isBuffer(entries) ? entries : tarGz(entries));
    const dest = join(dir, name, 'out');
    return { dest, result: extractTarGz(archive, dest) };
  }

  it('unpacks files below package/, with directories, pax long names and execute bits', async () => {
    const longName = `package/${'deep/'.repeat(30)}file.txt`;
    const { dest, result } = await extract('good', [
      { name: 'package/', type: 'directory' },
      { name: 'package/package.json', data: '{"name":"x"}' },
      { name: 'package/bin/run.js', data: '#!/usr/bin/env node\n', mode: 0o755 },
      { name: 'package/empty', type: 'directory' },
      { name: longName, data: 'long', pax: true },
    ]);
    assert.deepEqual(await result, { files: 3 });
    assert.equal(await readFile(join(dest, 'package.json'), 'utf8'), '{"name":"x"}');
    assert.equal(await readFile(join(dest, ...longName.split('/').slice(1)), 'utf8'), 'long');
    assert.ok((await stat(join(dest, 'empty'))).isDirectory());
    if (process.platform !== 'win32') {
      assert.equal((await stat(join(dest, 'bin', 'run.js'))).mode & 0o777, 0o755);
      assert.equal((await stat(join(dest, 'package.json'))).mode & 0o777, 0o644);
    }
  });

  const hostile: Array<[string, TarInput, RegExp]> = [
    ['a ".." that climbs out', { name: 'package/../../escaped.txt', data: 'x' }, /climbs out/],
    ['a ".." in the middle', { name: 'package/lib/../../../escaped.txt', data: 'x' }, /climbs out/],
    ['an absolute path', { name: '/tmp/escaped.txt', data: 'x' }, /absolute path/],
    ['a drive letter', { name: 'C:\\escaped.txt', data: 'x' }, /absolute path/],
    ['a backslash ".."', { name: 'package\\..\\..\\escaped.txt', data: 'x' }, /climbs out/],
    ['a ".." hidden in a pax name', { name: 'package/../../escaped.txt', data: 'x', pax: true }, /climbs out/],
    ['a symbolic link', { name: 'package/link', type: 'symlink', linkname: '/etc/passwd' }, /symbolic link/],
    ['a hard link', { name: 'package/link', type: 'hardlink', linkname: 'package/package.json' }, /hard link/],
    ['a fifo', { name: 'package/fifo', type: 'fifo' }, /FIFO/],
    // The rest of the hostile corpus: links that point out, devices, headers that lie or overflow.
    ['a symbolic link that climbs out', { name: 'package/lib', type: 'symlink', linkname: '../../..' }, /symbolic link/],
    ['a hard link to a file outside', { name: 'package/passwd', type: 'hardlink', linkname: '../../../../etc/passwd' }, /hard link/],
    ['a character device', { name: 'package/null', type: 'chardev' }, /Device/],
    ['a block device', { name: 'package/disk', type: 'blockdev' }, /Device/],
    ['an absolute path in a GNU long name', { name: `/tmp/${'x'.repeat(120)}/escaped.txt`, data: 'x', gnuLongName: true }, /absolute path/],
    ['a pax header over 64 KiB', { name: `package/${'a/'.repeat(40_000)}f`, data: 'x', pax: true }, /header \(over 65536\)/],
    ['a GNU long name over 64 KiB', { name: `package/${'a/'.repeat(40_000)}f`, data: 'x', gnuLongName: true }, /header \(over 65536\)/],
  ];
  for (const [what, entry, reason] of hostile) {
    it(`refuses the whole archive for ${what}, writing nothing`, async () => {
      const name = `hostile-${hostile.findIndex(([w]) => w === what)}`;
      const { dest, result } = await extract(name, [{ name: 'package/package.json', data: '{}' }, entry]);
      await assert.rejects(result, (error: unknown) => error instanceof UpdateError && error.code === 'unsafe_archive' && reason.test(error.message));
      assert.equal(existsSync(dest), false, 'nothing was unpacked');
      assert.equal(existsSync(join(dir, 'escaped.txt')), false);
      assert.equal(existsSync(join(dir, name, 'escaped.txt')), false);
    });
  }

  it('stops at the size cap (a gzip bomb) and on garbage', async () => {
    const big = tarGz([{ name: 'package/zeros', data: Buffer.alloc(4 * 1024 * 1024) }]);
    await assert.rejects(listTarGz(big, { maxBytes: 1024 * 1024 }), (error: unknown) => error instanceof UpdateError && error.code === 'archive_size');
    await assert.rejects(listTarGz(Buffer.from('not gzip at all')), (error: unknown) => error instanceof UpdateError && error.code === 'unsafe_archive');
    const corrupt = Buffer.alloc(1024);
    corrupt.write('package/x', 0);
    await assert.rejects(listTarGz(gzipSync(corrupt)), /corrupt header/);
  });

  it('refuses a link out followed by a file written through it, writing nothing', async () => {
    const { dest, result } = await extract('through-link', [
      { name: 'package/package.json', data: '{}' },
      { name: 'package/out', type: 'symlink', linkname: dir },
      { name: 'package/out/escaped.txt', data: 'x' },
    ]);
    await assert.rejects(result, (error: unknown) => error instanceof UpdateError && error.code === 'unsafe_archive' && /symbolic link/.test(error.message));
    assert.equal(existsSync(dest), false);
    assert.equal(existsSync(join(dir, 'escaped.txt')), false);
  });

  it('refuses a header whose size is over the cap before reading its data (an 8 GB claim)', async () => {
    const lying = tarGz([{ name: 'package/huge', data: 'tiny', headerSize: 8 * 1024 ** 3 - 1 }]);
    await assert.rejects(listTarGz(lying, { maxBytes: 1024 * 1024 }), (error: unknown) => error instanceof UpdateError && error.code === 'archive_size' && /package\/huge/.test(error.message));
  });

  it('refuses a truncated archive', async () => {
    const whole = tarGz([{ name: 'package/data', data: Buffer.alloc(5000, 1) }]);
    const { gunzipSync } = await import('node:zlib');
    const truncated = gzipSync(gunzipSync(whole).subarray(0, 2048));
    await assert.rejects(listTarGz(truncated), /truncated/);
  });
});
