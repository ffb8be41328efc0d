import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { silentLogger } from '@studio-worker/log';
import { createStudioCore } from '../core/index.ts';
import { registerDataCommands } from './backup.ts';
import { registerClientCommands } from './client-cli/index.ts';
import { nodeCrypto } from './crypto.ts';
import { startStudio } from './server.ts';
import { NodeSql } from './sqlite.ts';
import { STUDIO_VERSION } from './version.ts';

function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('the port must be a whole number from 0 to 65535');
  return n;
}

const program = new Command('studio')
  .description('The studio: queues generation jobs and offers them to studio-worker daemons.')
  .version(STUDIO_VERSION, '-v, --version');

program
  .command('serve')
  .description('run the studio: HTTP API, worker WebSocket and dashboard on one port')
  .option('--port <port>', 'port to listen on', port, Number(process.env.STUDIO_PORT ?? 4780))
  .option('--host <host>', 'address to bind (use 0.0.0.0 to let workers on other machines in)', process.env.STUDIO_HOST ?? '127.0.0.1')
  .option('--data-dir <dir>', 'where the SQLite database and result files live', process.env.STUDIO_DATA_DIR ?? '.data/studio')
  .option('--lease-seconds <n>', 'how long a claim lives without a heartbeat from its worker', positiveNumber('--lease-seconds'), 30)
  .option('--max-attempts <n>', 'retryable failures before a job fails for good', positiveNumber('--max-attempts'), 3)
  .option('--max-upload-mb <n>', 'largest result file accepted', positiveNumber('--max-upload-mb'), 256)
  .option('--allow-loopback-http-models', 'development: accept model file URLs over plain http to 127.0.0.1/localhost/::1 (otherwise https only)', false)
  .action(async (opts: { port: number; host: string; dataDir: string; leaseSeconds: number; maxAttempts: number; maxUploadMb: number; allowLoopbackHttpModels: boolean }) => {
    const studio = await startStudio({
      port: opts.port,
      host: opts.host,
      dataDir: resolve(opts.dataDir),
      core: { leaseMs: opts.leaseSeconds * 1000, defaultMaxAttempts: Math.round(opts.maxAttempts), allowLoopbackHttpModels: opts.allowLoopbackHttpModels },
      maxUploadBytes: Math.round(opts.maxUploadMb * 1024 * 1024),
    });
    printAdminToken(studio.url, studio.generatedAdminToken);
    process.stderr.write(`studio ${STUDIO_VERSION} listening on ${studio.url} (dashboard: ${studio.url}/)\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1);
      stopping = true;
      studio.log.info({ op: 'shutdown', signal }, 'stopping');
      void studio.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('admin-token')
  .description('mint a new admin token (the old one stops working) and print it once')
  .option('--data-dir <dir>', 'the studio data directory', process.env.STUDIO_DATA_DIR ?? '.data/studio')
  .action((opts: { dataDir: string }) => {
    const sql = new NodeSql(join(resolve(opts.dataDir), 'studio.sqlite'));
    const core = createStudioCore({ sql, clock: Date, channel: { send() {}, close() {} }, events: { enabled: false, publish() {} }, crypto: nodeCrypto }, silentLogger);
    const token = core.admin.rotate();
    sql.close();
    process.stdout.write(`${token}\n`);
    process.stderr.write('New admin token printed above; restart a running studio for it to take effect.\n');
  });

registerClientCommands(program);
registerDataCommands(program);

/** The generated admin token is shown once, on the terminal (never in the log). */
export function printAdminToken(url: string, token: string | undefined): void {
  if (!token) return;
  process.stderr.write(
    `\n  Admin token (shown once; store it somewhere safe): ${token}\n` +
      `  Dashboard: ${url}/#token=${token}\n` +
      '  Lost it? Run "npx studio admin-token" for a new one, or set STUDIO_ADMIN_TOKEN.\n\n',
  );
}

/** Run the CLI; `bin/studio.js` calls this. */
export async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (error) {
    process.stderr.write(`studio: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
