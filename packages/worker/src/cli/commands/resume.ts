import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import type { CliIo } from '../io.ts';
import { callDaemon, describeRefusal } from './daemon-via-api.ts';

/** `studio-worker resume`: the running daemon takes studio offers again. */
export async function resumeCommand(configPath: string, io: CliIo): Promise<number> {
  const result = await callDaemon<{ paused: boolean }>('resume', configPath, io, 'POST', '/daemon/resume');
  if (!result.ok) return result.code;
  if (result.answer.status !== 200) {
    io.err(describeRefusal('resume', result.answer));
    return EXIT_ERROR;
  }
  io.out('resumed: the daemon takes studio jobs again');
  return EXIT_OK;
}
