import { ConfigError, readConfig, renderConfigToml } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK } from '../../platform/exit-codes.ts';
import type { CliIo } from '../io.ts';

/** `studio-worker config`: the resolved config as TOML, credentials masked. */
export async function configCommand(configPath: string, io: CliIo): Promise<number> {
  try {
    const { config, exists } = await readConfig(configPath);
    io.out(`# ${configPath}${exists ? '' : ' (not created yet; these are the defaults)'}`);
    io.out(renderConfigToml(config, { maskSecrets: true }));
    return EXIT_OK;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker config: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
}
