import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import type { CliIo } from '../io.ts';
import { callDaemon, describeRefusal } from './daemon-via-api.ts';

/** `studio-worker pause`: the running daemon stops taking studio offers (until resume or a restart). */
export async function pauseCommand(configPath: string, io: CliIo): Promise<number> {
  const result = await callDaemon<{ paused: boolean }>('pause', configPath, io, 'POST', '/daemon/pause');
  if (!result.ok) return result.code;
  if (result.answer.status !== 200) {
    io.err(describeRefusal('pause', result.answer));
    return EXIT_ERROR;
  }
  io.out('paused: the daemon takes no new studio jobs (a running job finishes); `studio-worker resume` takes them again, and so does a restart');
  return EXIT_OK;
}
