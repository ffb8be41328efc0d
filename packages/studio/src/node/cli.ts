import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { silentLogger } from '@studio-worker/log';
import { createStudioCore } from '../core/index.ts';
import { registerDataCommands } from './backup.ts';
import { registerClientCommands } from './client-cli/index.ts';
import { nodeCrypto } from './crypto.ts';
import { startStudio } from './server.ts';
import { NodeSql } from './sqlite.ts';
import { registerTransferCommands } from './transfer-cli.ts';
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

interface ServeOptions {
  port: number;
  host: string;
  dataDir: string;
  leaseSeconds: number;
  maxAttempts: number;
  maxUploadMb: number;
  maxJsonMb: number;
  maxJsonDepth: number;
  headersTimeoutSeconds: number;
  idleTimeoutSeconds: number;
  helloTimeoutSeconds: number;
  registerPerMinute: number;
  maxCapabilitiesKb: number;
  maxPendingPerAddress: number;
  maxPending: number;
  allowLoopbackHttpModels: boolean;
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
  .option('--max-json-mb <n>', 'largest JSON request body (every route but the result upload)', positiveNumber('--max-json-mb'), 4)
  .option('--max-json-depth <n>', 'deepest nesting of arrays and objects in a JSON body', positiveNumber('--max-json-depth'), 64)
  .option('--headers-timeout-seconds <n>', 'a connection must send its request head within this (also one that sends nothing)', positiveNumber('--headers-timeout-seconds'), 10)
  .option('--idle-timeout-seconds <n>', 'an HTTP connection that moves no byte for this long is closed', positiveNumber('--idle-timeout-seconds'), 65)
  .option('--hello-timeout-seconds <n>', 'a worker socket must say hello within this', positiveNumber('--hello-timeout-seconds'), 10)
  .option('--register-per-minute <n>', 'registration requests per source address per minute', positiveNumber('--register-per-minute'), 10)
  .option('--max-capabilities-kb <n>', 'largest capabilities object in a registration request', positiveNumber('--max-capabilities-kb'), 64)
  .option('--max-pending-per-address <n>', 'registration requests waiting for approval from one source address', positiveNumber('--max-pending-per-address'), 20)
  .option('--max-pending <n>', 'registration requests waiting for approval in total', positiveNumber('--max-pending'), 500)
  .action(async (opts: ServeOptions) => {
    const seconds = (n: number) => Math.round(n * 1000);
    const studio = await startStudio({
      port: opts.port,
      host: opts.host,
      dataDir: resolve(opts.dataDir),
      core: {
        leaseMs: seconds(opts.leaseSeconds),
        defaultMaxAttempts: Math.round(opts.maxAttempts),
        helloTimeoutMs: seconds(opts.helloTimeoutSeconds),
        maxCapabilitiesBytes: Math.round(opts.maxCapabilitiesKb * 1024),
        maxPendingPerAddress: Math.round(opts.maxPendingPerAddress),
        maxPendingTotal: Math.round(opts.maxPending),
        allowLoopbackHttpModels: opts.allowLoopbackHttpModels,
      },
      limits: {
        maxUploadBytes: Math.round(opts.maxUploadMb * 1024 * 1024),
        maxJsonBytes: Math.round(opts.maxJsonMb * 1024 * 1024),
        maxJsonDepth: Math.round(opts.maxJsonDepth),
        headersTimeoutMs: seconds(opts.headersTimeoutSeconds),
        idleTimeoutMs: seconds(opts.idleTimeoutSeconds),
        registerRequestsPerMinute: Math.round(opts.registerPerMinute),
      },
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
registerTransferCommands(program);

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
