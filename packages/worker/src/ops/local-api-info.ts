import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { configDirOf } from '../config/index.ts';
import { isProcessAlive } from '../platform/lock.ts';

/** `<config dir>/local-api.json`, written (0600) by the daemon once its local API listens. */
export const LocalApiInfoSchema = z.object({
  url: z.url(),
  token: z.string().min(1),
  pid: z.number().int().positive().optional(),
});
export type LocalApiInfo = z.infer<typeof LocalApiInfoSchema>;

export function localApiInfoPath(configPath: string): string {
  return join(configDirOf(configPath), 'local-api.json');
}

/**
 * The local API of a live daemon, or null: no file yet, a half-written or foreign file, or a file
 * left behind by a daemon that died (its pid is gone).
 */
export async function readLocalApiInfo(configPath: string): Promise<LocalApiInfo | null> {
  let text: string;
  try {
    text = await readFile(localApiInfoPath(configPath), 'utf8');
  } catch {
    return null;
  }
  let parsed;
  try {
    parsed = LocalApiInfoSchema.safeParse(JSON.parse(text));
  } catch {
    return null;
  }
  if (!parsed.success) return null;
  if (parsed.data.pid !== undefined && !isProcessAlive(parsed.data.pid)) return null;
  return { ...parsed.data, url: parsed.data.url.replace(/\/+$/, '') };
}

/** `GET <url>/healthz` answers `{ok:true}` within `timeoutMs` (no token needed). */
export async function localApiHealthy(url: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return false;
    const body = (await response.json()) as { ok?: unknown };
    return body.ok === true;
  } catch {
    return false;
  }
}

/** The web UI with the token in the fragment: the fragment never reaches a server log or a Referer. */
export function webUiUrl(info: LocalApiInfo): string {
  return `${info.url}/#token=${encodeURIComponent(info.token)}`;
}
