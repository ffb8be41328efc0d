import { ConfigError, readConfig, saveConfig } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE } from '../../platform/exit-codes.ts';
import { DaemonUnreachableError } from '../../local-api/index.ts';
import type { CliIo } from '../io.ts';
import { describeRefusal, findDaemon } from './daemon-via-api.ts';

/**
 * `studio-worker set-threshold <gb>`: the largest job (by its VRAM estimate) the studio may offer.
 * Through the running daemon when there is one (it advertises the value from its next heartbeat),
 * else straight into config.toml.
 */
export async function setThresholdCommand(configPath: string, raw: string, io: CliIo): Promise<number> {
  const gb = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(gb) || gb < 0) {
    io.err(`studio-worker set-threshold: "${raw}" is not a number of GB ≥ 0; e.g. studio-worker set-threshold 8`);
    return EXIT_USAGE;
  }
  const daemon = await findDaemon(configPath);
  if (daemon) {
    try {
      const answer = await daemon.request('PUT', '/daemon/config', { vramThresholdGb: gb });
      if (answer.status !== 200) {
        io.err(describeRefusal('set-threshold', answer));
        return EXIT_ERROR;
      }
      io.out(`vram threshold set to ${gb} GB; the running daemon (pid ${daemon.pid}) advertises it from its next heartbeat`);
      return EXIT_OK;
    } catch (error) {
      if (!(error instanceof DaemonUnreachableError)) throw error;
      io.err(`studio-worker set-threshold: ${error.message}; try again in a moment, or stop the daemon and run this again to edit config.toml directly`);
      return EXIT_ERROR;
    }
  }
  try {
    const { config } = await readConfig(configPath);
    await saveConfig(configPath, { ...config, vramThresholdGb: gb });
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker set-threshold: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  io.out(`vram threshold set to ${gb} GB in ${configPath}; the daemon uses it when it starts (studio-worker run)`);
  return EXIT_OK;
}
