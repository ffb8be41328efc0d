import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/** One entry for `tarGz`. Names are written as given (tests need hostile ones). */
export interface TarInput {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'hardlink' | 'fifo' | 'chardev' | 'blockdev';
  data?: string | Buffer;
  mode?: number;
  linkname?: string;
  /** Put the name in a pax `path=` record instead of the header (names over 100 bytes need it). */
  pax?: boolean;
  /** Put the name in a GNU long-name (`L`) entry instead of the header. */
  gnuLongName?: boolean;
  /** The header's size field, when it should lie about the data that follows. */
  headerSize?: number;
}

const BLOCK = 512;
const TYPE_FLAGS = { file: '0', directory: '5', symlink: '2', hardlink: '1', fifo: '6', chardev: '3', blockdev: '4' } as const;

/** A gzip'd ustar archive, built byte by byte so tests control every field. */
export function tarGz(entries: readonly TarInput[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.data === undefined ? Buffer.alloc(0) : Buffer.from(entry.data);
    if (entry.pax) {
      const record = paxRecord('path', entry.name);
      blocks.push(header({ name: 'PaxHeader', size: record.length, typeflag: 'x', mode: 0o644 }), padded(record));
    }
    if (entry.gnuLongName) {
      const name = Buffer.from(`${entry.name}\0`);
      blocks.push(header({ name: '././@LongLink', size: name.length, typeflag: 'L', mode: 0o644 }), padded(name));
    }
    blocks.push(
      header({
        name: entry.pax || entry.gnuLongName ? 'placeholder-name' : entry.name,
        size: entry.headerSize ?? (entry.type === undefined || entry.type === 'file' ? data.length : 0),
        typeflag: TYPE_FLAGS[entry.type ?? 'file'],
        mode: entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644),
        linkname: entry.linkname ?? '',
      }),
    );
    if ((entry.type ?? 'file') === 'file') blocks.push(padded(data));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(blocks));
}

function header(fields: { name: string; size: number; typeflag: string; mode: number; linkname?: string }): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name, 0, 100, 'utf8');
  block.write(octal(fields.mode, 8), 100, 'latin1');
  block.write(octal(0, 8), 108, 'latin1');
  block.write(octal(0, 8), 116, 'latin1');
  block.write(octal(fields.size, 12), 124, 'latin1');
  block.write(octal(0, 12), 136, 'latin1');
  block.write('        ', 148, 'latin1');
  block.write(fields.typeflag, 156, 'latin1');
  block.write(fields.linkname ?? '', 157, 100, 'utf8');
  block.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return block;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}

function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (Buffer.byteLength(`${length}${body}`) !== length) length = Buffer.byteLength(`${length}${body}`);
  return Buffer.from(`${length}${body}`);
}

export function sha512Integrity(data: Buffer): string {
  return `sha512-${createHash('sha512').update(data).digest('base64')}`;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * How a fake worker version behaves when started: `healthy` writes started.json (with its argv and
 * environment, so tests can check what it was given) and stays up; `crash` exits 3 at once; `hang`
 * stays up without ever reporting.
 */
export type FakeBehaviour = 'healthy' | 'crash' | 'hang';

/** A tiny stand-in for the studio-worker package: package.json and an entry script, under `package/`. */
export function fakeWorkerPackage(version: string, behaviour: FakeBehaviour, options: { dependencies?: Record<string, string>; name?: string } = {}): TarInput[] {
  const manifest = {
    name: options.name ?? 'studio-worker',
    version,
    type: 'module',
    bin: { 'studio-worker': './bin/studio-worker.js' },
    dependencies: options.dependencies ?? { 'left-pad': '^1.3.0' },
  };
  return [
    { name: 'package/package.json', data: JSON.stringify(manifest, null, 2) },
    { name: 'package/bin/studio-worker.js', data: fakeEntryScript(version, behaviour), mode: 0o755 },
    { name: 'package/README.md', data: `fake studio-worker ${version}\n` },
  ];
}

export function fakeEntryScript(version: string, behaviour: FakeBehaviour): string {
  return `#!/usr/bin/env node
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
const behaviour = ${JSON.stringify(behaviour)};
const args = process.argv.slice(2);
if (behaviour === 'crash') process.exit(3);
if (behaviour === 'healthy') {
  const dir = dirname(args[args.indexOf('--config') + 1]);
  const record = {
    version: ${JSON.stringify(version)},
    pid: process.pid,
    startedAt: new Date().toISOString(),
    args,
    updatedFrom: process.env.STUDIO_WORKER_UPDATED_FROM ?? null,
    rolledBackFrom: process.env.STUDIO_WORKER_ROLLED_BACK_FROM ?? null,
  };
  const temp = join(dir, 'started.json.tmp-' + process.pid);
  writeFileSync(temp, JSON.stringify(record));
  renameSync(temp, join(dir, 'started.json'));
}
setInterval(() => {}, 1 << 30);
`;
}
