import { join } from 'node:path';
import { configDirOf } from '../config/index.ts';

/** `<config dir>/logs/daemon.log` (rotated as `.1` … `.3`). */
export function daemonLogPath(configPath: string): string {
  return join(configDirOf(configPath), 'logs', 'daemon.log');
}
