import { createWriteStream, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import type { StudioClient } from '@studio-worker/client';

/**
 * The relative path (without extension) a result is saved under: gameId/assetName, each segment
 * made safe (no "..", no separators but the asset name's own "/", no control characters). Undefined
 * when the job names no asset.
 */
export function assetPath(gameId: string, assetName: string): string | undefined {
  if (!assetName) return undefined;
  const parts = [gameId, ...assetName.split('/')].map(safeSegment).filter(Boolean);
  return parts.length > 0 ? parts.join('/') : undefined;
}

function safeSegment(segment: string): string {
  const cleaned = segment.replace(/[^A-Za-z0-9._ -]/g, '_').trim();
  return cleaned === '' || /^\.+$/.test(cleaned) ? '' : cleaned.replace(/^\./, '_');
}

/** "fox" + png → "fox.png"; an asset name that already ends in the extension keeps it once. */
export function withExt(name: string, ext: string): string {
  return name.toLowerCase().endsWith(`.${ext.toLowerCase()}`) ? name : `${name}.${ext}`;
}

/** Stream one result to disk: written beside, renamed into place, so a file under its final name is always whole. */
export async function saveResult(client: StudioClient, jobId: string, target: string, signal?: AbortSignal): Promise<void> {
  const res = await client.result(jobId, signal);
  mkdirSync(dirname(target), { recursive: true });
  await pipeline(Readable.fromWeb(res.body as ReadableStream), createWriteStream(`${target}.part`), { signal });
  renameSync(`${target}.part`, target);
}
