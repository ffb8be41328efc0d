import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, extract, type ReadEntry } from 'tar';
import { UpdateError, errorText } from './errors.ts';

// Update archives are unpacked by node-tar (npm's own), in two passes over the verified file:
//   1. list: every header is read and checked against our rules (files and directories only, no
//      absolute or climbing names, sizes under the cap, no oversized pax/long-name headers);
//      nothing is written, so a bad archive leaves nothing behind.
//   2. extract: node-tar with its path-safety defaults (preservePaths off: no absolute names, no
//      `..`, no writing through a symlink), strict (every warning is an error), and a filter that
//      lets through only what pass 1 allowed.

/** One entry of an archive, after the checks: a plain file or a directory, at a safe relative path. */
export interface TarEntry {
  /** Relative, `/`-separated, with the leading components stripped. */
  path: string;
  type: 'file' | 'directory';
  /** Permission bits as archived. */
  mode: number;
  size: number;
}

export interface TarOptions {
  /** Leading path components to drop: npm archives put everything under `package/`. Default 1. */
  stripComponents?: number;
  /** Unpacked size cap (a gzip bomb stops here). Default 512 MiB. */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 512 * 1024 * 1024;
/** A pax or GNU long-name header this large is an attack, not a path (node-tar's default is 1 MiB). */
const MAX_META_BYTES = 64 * 1024;
const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory']);

/**
 * Unpack a .tgz into `destDir`: files and directories only. Every entry is checked before anything
 * is written, so an archive with one bad entry (an absolute path, a `..`, a link, a device) writes
 * nothing. Files get 0755 when any execute bit was set, else 0644.
 */
export async function extractTarGz(archivePath: string, destDir: string, options: TarOptions = {}): Promise<{ files: number }> {
  const entries = await listTarGz(createReadStream(archivePath), options).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EACCES') {
      throw new UpdateError('local_io', `reading ${archivePath} failed: ${errorText(error)}`, { cause: error });
    }
    throw error;
  });
  const allowed = new Map(entries.map((entry) => [entry.path, entry]));
  const strip = options.stripComponents ?? 1;
  const root = resolve(destDir);
  try {
    await mkdir(root, { recursive: true, mode: 0o755 });
    await extract({
      file: archivePath,
      cwd: root,
      strip,
      strict: true,
      preservePaths: false,
      preserveOwner: false,
      maxMetaEntrySize: MAX_META_BYTES,
      filter: (path, entry) => {
        const relative = safeRelativePath(path, strip);
        const checked = relative === null ? undefined : allowed.get(relative);
        if (!checked || !('type' in entry) || checked.type !== (entry.type === 'Directory' ? 'directory' : 'file')) return false;
        // The archive's owner and exact bits do not matter to a release: executable or not.
        entry.mode = checked.type === 'directory' || checked.mode & 0o111 ? 0o755 : 0o644;
        return true;
      },
    });
  } catch (error) {
    // pass 1 let it through, so this is the disk (or an archive that changed under us): undo it.
    await rm(root, { recursive: true, force: true }).catch(() => {});
    throw new UpdateError('local_io', `unpacking into ${root} failed: ${errorText(error)}; check the data dir's disk space and permissions`, { cause: error });
  }
  return { files: entries.filter((entry) => entry.type === 'file').length };
}

/**
 * Read a gzip'd tar and check every entry without writing anything; resolves with the entries that
 * would be unpacked (the stripped folders themselves left out). Refuses the whole archive
 * (`unsafe_archive`) for a link, a device or fifo, an absolute or climbing name, a corrupt or
 * truncated header, an oversized pax/long-name header; `archive_size` past `maxBytes` unpacked.
 */
export async function listTarGz(source: Readable | Buffer, options: TarOptions = {}): Promise<TarEntry[]> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const strip = options.stripComponents ?? 1;
  const entries: TarEntry[] = [];
  let refusal: UpdateError | undefined;
  const refuse = (error: UpdateError): void => {
    refusal ??= error;
  };

  let unpacked = 0;
  let declared = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      unpacked += chunk.length;
      if (unpacked > maxBytes) done(new UpdateError('archive_size', `the archive unpacks to more than ${maxBytes} bytes; refusing it`));
      else done(null, chunk);
    },
  });
  const parser = new Parser({
    strict: true,
    maxMetaEntrySize: MAX_META_BYTES,
    onReadEntry: (entry: ReadEntry) => {
      entry.resume();
      if (refusal) return;
      try {
        const checked = checkEntry(entry, strip);
        // The header's size, before its data arrives: a lying 8 GB header stops here, not at the disk.
        declared += checked?.size ?? 0;
        if (declared > maxBytes) refuse(new UpdateError('archive_size', `the archive's entries add up to more than ${maxBytes} bytes ("${entry.path}" alone says ${entry.size} bytes); refusing it`));
        else if (checked) entries.push(checked);
      } catch (error) {
        if (error instanceof UpdateError) refuse(error);
        else throw error;
      }
    },
  });
  // node-tar skips a meta header over maxMetaEntrySize; for us it is a hostile archive.
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    if (entry.meta) refuse(new UpdateError('unsafe_archive', `the archive has a ${entry.size}-byte ${entry.type} header (over ${MAX_META_BYTES}); refusing the archive`));
  });

  try {
    await pipeline(Buffer.isBuffer(source) ? Readable.from([source]) : source, createGunzip(), counter, parser);
  } catch (error) {
    // What our checks saw first explains better than where the parser gave up.
    if (refusal) throw refusal;
    if (error instanceof UpdateError) throw error;
    throw parserRefusal(error);
  }
  if (refusal) throw refusal;
  return entries;
}

/** One header against our rules: the entry to unpack, null for a stripped folder; throws to refuse. */
function checkEntry(entry: ReadEntry, strip: number): TarEntry | null {
  const name = entry.path;
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
    throw new UpdateError('unsafe_archive', `the archive entry "${name}" is a ${entry.type === 'SymbolicLink' ? 'symbolic' : 'hard'} link (to "${entry.linkpath ?? ''}"); update archives may hold only files and directories`);
  }
  if (!ALLOWED_TYPES.has(entry.type)) {
    throw new UpdateError('unsafe_archive', `the archive entry "${name}" is a ${entry.type} (not a file or a directory); refusing the archive`);
  }
  const path = safeRelativePath(name, strip);
  if (path === null) return null;
  const size = entry.size ?? 0;
  if (!Number.isSafeInteger(size) || size < 0) throw new UpdateError('unsafe_archive', `the archive entry "${name}" has an impossible size`);
  return { path, type: entry.type === 'Directory' ? 'directory' : 'file', mode: (entry.mode ?? 0) & 0o7777, size };
}

/** node-tar's strict-mode errors, in our words. */
function parserRefusal(error: unknown): UpdateError {
  const code = (error as { code?: string }).code ?? '';
  const text = errorText(error);
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || /incorrect header check|unexpected end of file/i.test(text)) {
    return new UpdateError('unsafe_archive', `the archive is not a whole gzip stream (${text}); it is truncated or not gzip-compressed`, { cause: error });
  }
  if (/checksum/i.test(text)) return new UpdateError('unsafe_archive', `the archive has a corrupt header (${text})`, { cause: error });
  if (/truncated|unexpected eof/i.test(text)) return new UpdateError('unsafe_archive', `the archive ends inside an entry; it is truncated (${text})`, { cause: error });
  return new UpdateError('unsafe_archive', `the archive is not a valid tar: ${text}${code ? ` (${code})` : ''}`, { cause: error });
}

/**
 * The entry's path below the stripped components, or null for the stripped folders themselves.
 * Throws for absolute paths, drive letters, `..` components and NUL bytes; a backslash counts as a
 * separator, since it is one on Windows.
 */
export function safeRelativePath(name: string, strip: number): string | null {
  if (name.includes('\0')) throw new UpdateError('unsafe_archive', `an archive entry name holds a NUL byte; refusing the archive`);
  const unified = name.replace(/\\/g, '/');
  if (unified.startsWith('/') || /^[A-Za-z]:/.test(unified)) throw new UpdateError('unsafe_archive', `the archive entry "${name}" has an absolute path; refusing the archive`);
  const parts = unified.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new UpdateError('unsafe_archive', `the archive entry "${name}" climbs out with ".."; refusing the archive`);
  const kept = parts.slice(strip);
  return kept.length === 0 ? null : kept.join('/');
}
