import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '@studio-worker/log';
import { isLoopbackHost } from '@studio-worker/protocol';
import { writeFileAtomic } from '../../config/atomic-file.ts';
import { flattenName, MAX_EXTRACTED_BYTES, readArchive } from './archive.ts';

/** A pinned sd.cpp release: the archive's URL and its sha256. */
export interface ReleaseSpec {
  url: string;
  sha256: string;
}

export interface InstallOptions {
  log: Logger;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Sent as the user agent (original-spec: `studio-worker/<version>`). */
  userAgent?: string;
}

export interface InstalledRelease {
  url: string;
  sha256: string;
  files: string[];
}

/** Written last, so a half-finished install is never taken for a finished one. */
export const RELEASE_MARKER = '.sd-cpp-release.json';

export class ReleaseError extends Error {
  override readonly name = 'ReleaseError';
}

/** Whether `binDir` holds exactly this release (by URL and sha256), installed completely. */
export async function installedRelease(binDir: string, spec: ReleaseSpec): Promise<InstalledRelease | undefined> {
  try {
    const marker = JSON.parse(await readFile(join(binDir, RELEASE_MARKER), 'utf8')) as Partial<InstalledRelease>;
    if (marker.url === spec.url && typeof marker.sha256 === 'string' && marker.sha256.toLowerCase() === spec.sha256.toLowerCase()) {
      return { url: marker.url, sha256: marker.sha256, files: Array.isArray(marker.files) ? marker.files : [] };
    }
  } catch {
    // No marker (or a broken one): not installed.
  }
  return undefined;
}

/**
 * Download a release archive (https, or http to loopback), check its sha256 while streaming, and
 * extract it flat into `binDir`: every entry keeps only its plain file name, so no entry can
 * write outside the directory (zip-slip), and every file is made executable.
 */
export async function installRelease(binDir: string, spec: ReleaseSpec, options: InstallOptions): Promise<InstalledRelease> {
  checkReleaseUrl(spec.url);
  await mkdir(binDir, { recursive: true });
  const partial = join(binDir, `.release-${randomBytes(6).toString('hex')}.part`);
  const log = options.log;
  log.info({ op: 'sdcpp_release', url: spec.url }, 'downloading sd.cpp release');
  try {
    const actual = await download(spec.url, partial, options);
    if (actual !== spec.sha256.toLowerCase()) {
      throw new ReleaseError(`the sd.cpp release at ${spec.url} has sha256 ${actual}, but release_sha256 says ${spec.sha256.toLowerCase()}: refusing to install it (fix release_sha256 or the URL)`);
    }
    const files = await extractFlat(await readFile(partial), binDir, log);
    if (files.length === 0) throw new ReleaseError(`the sd.cpp release at ${spec.url} contains no files`);
    const installed: InstalledRelease = { url: spec.url, sha256: actual, files };
    await writeFile(join(binDir, RELEASE_MARKER), `${JSON.stringify(installed, null, 2)}\n`);
    log.info({ op: 'sdcpp_release', url: spec.url, files: files.length }, 'sd.cpp release installed');
    return installed;
  } catch (error) {
    log.warn({ op: 'sdcpp_release', url: spec.url, err: error }, 'sd.cpp release install failed');
    throw error;
  } finally {
    await rm(partial, { force: true });
  }
}

function checkReleaseUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ReleaseError(`release_url "${url}" is not a URL`);
  }
  if (parsed.protocol === 'https:') return;
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) return;
  throw new ReleaseError(`release_url must be https (plain http only to loopback); got ${parsed.protocol}//${parsed.host}`);
}

/** Stream the body to `dest`, hashing as it goes; answers the hex sha256. */
async function download(url: string, dest: string, options: InstallOptions): Promise<string> {
  const headers: Record<string, string> = {};
  if (options.userAgent !== undefined) headers['user-agent'] = options.userAgent;
  const init: RequestInit = { headers, redirect: 'follow' };
  if (options.signal !== undefined) init.signal = options.signal;
  const response = await (options.fetch ?? fetch)(url, init);
  if (response.redirected) checkReleaseUrl(response.url);
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new ReleaseError(`downloading the sd.cpp release from ${url} failed: HTTP ${response.status}`);
  }
  const hash = createHash('sha256');
  let received = 0;
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    received += chunk.length;
  });
  await pipeline(body, createWriteStream(dest));
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared !== received) {
    throw new ReleaseError(`the sd.cpp release download from ${url} was cut short (${received} of ${declared} bytes)`);
  }
  return hash.digest('hex');
}

async function extractFlat(archive: Buffer, binDir: string, log: Logger): Promise<string[]> {
  const written = new Set<string>();
  let total = 0;
  for (const entry of readArchive(archive)) {
    if (entry.kind === 'directory') continue;
    const name = flattenName(entry.name);
    if (name === undefined || name === '.' || name === '..' || name === RELEASE_MARKER) {
      log.warn({ op: 'sdcpp_release', entry: entry.name }, 'skipping an archive entry without a usable file name');
      continue;
    }
    if (name !== entry.name) log.debug({ op: 'sdcpp_release', entry: entry.name, name }, 'archive entry flattened');
    if (written.has(name)) log.warn({ op: 'sdcpp_release', entry: entry.name, name }, 'two archive entries flatten to the same name; the later one wins');
    const dest = join(binDir, name);
    if (entry.kind === 'file') {
      const data = entry.data();
      total += data.length;
      if (total > MAX_EXTRACTED_BYTES) throw new ReleaseError('the sd.cpp release expands to more than 4 GiB; refusing it');
      await writeFileAtomic(dest, data, 0o755);
      written.add(name);
    } else if (entry.kind === 'symlink') {
      // Shared-library aliases (libfoo.so -> libfoo.so.1) survive flattening only when they point
      // at a plain name in the same directory; anything else could reach outside bin/.
      const target = flattenName(entry.target);
      if (target === undefined || target !== entry.target) {
        log.warn({ op: 'sdcpp_release', entry: entry.name, target: entry.target }, 'skipping a symlink that points outside the release directory');
        continue;
      }
      await unlink(dest).catch(() => undefined);
      await symlink(target, dest);
      written.add(name);
    } else {
      log.warn({ op: 'sdcpp_release', entry: entry.name }, 'skipping an archive entry that is not a file');
    }
  }
  return [...written].sort();
}
