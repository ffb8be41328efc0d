import { configDirOf } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_NO_DAEMON } from '../../platform/exit-codes.ts';
import { DaemonUnreachableError, errorMessage, LocalApiClient, type ApiAnswer } from '../../local-api/index.ts';
import type { CliIo } from '../io.ts';
import { commandHint } from '../../config/invocation.ts';

/** What a command tells the user when it needs a daemon and none runs. */
export function noDaemonMessage(configPath: string): string {
  return `no daemon is running for ${configDirOf(configPath)}; start it with ${commandHint(configPath, 'run')}`;
}

/** The running daemon's local API for this config, or null when no daemon runs. */
export function findDaemon(configPath: string): Promise<LocalApiClient | null> {
  return LocalApiClient.discover(configDirOf(configPath));
}

export type ApiCallResult<T> = { ok: true; answer: ApiAnswer<T> } | { ok: false; code: number };

/**
 * One call to the running daemon for a command that cannot work without it: no daemon → exit 4 with
 * how to start one; no answer → exit 1 with what to check. An HTTP error status is an answer (the
 * caller decides).
 */
export async function callDaemon<T>(command: string, configPath: string, io: CliIo, method: string, path: string, body?: unknown): Promise<ApiCallResult<T>> {
  const client = await findDaemon(configPath);
  if (!client) {
    io.err(`studio-worker ${command}: ${noDaemonMessage(configPath)}`);
    return { ok: false, code: EXIT_NO_DAEMON };
  }
  try {
    return { ok: true, answer: await client.request<T>(method, path, body) };
  } catch (error) {
    if (!(error instanceof DaemonUnreachableError)) throw error;
    io.err(`studio-worker ${command}: ${error.message}; it may be starting or stopping — try again in a moment, or check \`studio-worker logs\``);
    return { ok: false, code: EXIT_ERROR };
  }
}

/** An error answer as one line for stderr. */
export function describeRefusal(command: string, answer: ApiAnswer): string {
  return `studio-worker ${command}: the daemon refused (${answer.status}): ${errorMessage(answer)}`;
}
