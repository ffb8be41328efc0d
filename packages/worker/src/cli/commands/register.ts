import { BadUrlError, graphicsApiBase, httpApiBase, POOL_NAME } from '@studio-worker/protocol';
import { ConfigError, readConfig, saveConfig, withoutFields } from '../../config/index.ts';
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE } from '../../platform/exit-codes.ts';
import { detectVramGb } from '../../machine/vram.ts';
import type { CliIo } from '../io.ts';
import { commandHint } from '../../config/invocation.ts';
import { runningDaemonPid } from './running.ts';

export interface RegisterOptions {
  apiBaseUrl?: string;
  label?: string;
  /** The pool to register into on a sharded studio; '' clears it. */
  pool?: string;
  reset?: boolean;
}

const REGISTRATION_FIELDS = ['workerId', 'authToken', 'registrationRequestId', 'registrationSecret', 'installId'] as const;

/** `studio-worker register`: edits the config only (no HTTP); the daemon does the registering. */
export async function registerCommand(configPath: string, options: RegisterOptions, io: CliIo): Promise<number> {
  if (options.apiBaseUrl !== undefined) {
    try {
      graphicsApiBase(options.apiBaseUrl);
    } catch (error) {
      if (!(error instanceof BadUrlError)) throw error;
      io.err(`studio-worker register: --api-base-url ${error.message}`);
      return EXIT_USAGE;
    }
  }
  if (options.label !== undefined && options.label.length > 100) {
    io.err('studio-worker register: --label must be at most 100 characters; use a shorter name');
    return EXIT_USAGE;
  }
  if (options.pool !== undefined && options.pool !== '' && !POOL_NAME.safeParse(options.pool).success) {
    io.err(`studio-worker register: --pool must be 1 to 32 lowercase letters, digits or "-" (e.g. gpu), or "" for none`);
    return EXIT_USAGE;
  }
  let config;
  let exists;
  try {
    ({ config, exists } = await readConfig(configPath));
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker register: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }
  let next = { ...config };
  if (!exists) {
    // This creates the file, so the first-run rule applies here: no threshold above the card.
    const vram = await detectVramGb();
    if (vram > 0 && next.vramThresholdGb > vram) next.vramThresholdGb = vram;
  }
  if (options.apiBaseUrl !== undefined) next.apiBaseUrl = options.apiBaseUrl;
  if (options.label !== undefined) {
    if (options.label.trim() === '') next = withoutFields(next, ['label']);
    else next.label = options.label.trim();
  }
  if (options.pool !== undefined) {
    if (options.pool === '') next = withoutFields(next, ['pool']);
    else next.pool = options.pool;
  }
  if (options.reset) next = withoutFields(next, REGISTRATION_FIELDS);
  try {
    await saveConfig(configPath, next);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`studio-worker register: ${error.message}`);
      return EXIT_ERROR;
    }
    throw error;
  }

  io.out(`saved ${configPath}`);
  io.out(`studio: ${httpApiBase(next.apiBaseUrl)}`);
  if (next.label) io.out(`label: ${next.label}`);
  if (next.pool) io.out(`pool: ${next.pool}`);
  // The pool is sent with the registration request only: an approved worker stays where it is.
  if (options.pool !== undefined && next.workerId && !options.reset) io.out(`note: this worker is already approved as ${next.workerId}; the pool applies to a new registration (add --reset)`);
  if (options.reset) io.out('registration reset: worker id, token, install id and any pending request were cleared');
  const pid = await runningDaemonPid(configPath);
  if (pid !== null) {
    io.out(`next: a daemon is running (pid ${pid}) with the old settings; restart it (kill ${pid}, then ${commandHint(configPath, 'run')}) so it uses the new ones`);
  } else if (next.workerId && next.authToken) {
    io.out(`next: ${commandHint(configPath, 'run')}  (this worker is already approved as ${next.workerId})`);
  } else {
    io.out(`next: ${commandHint(configPath, 'run')}  (it sends a registration request; then approve this worker in the studio dashboard)`);
  }
  return EXIT_OK;
}
