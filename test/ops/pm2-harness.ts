// Runs the repo's ecosystem.config.cjs under a private PM2 (PM2_HOME in a temp dir, never ~/.pm2),
// against a temp data dir and a free port.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StudioApi } from '../helpers/api.ts';
import { ROOT } from '../helpers/processes.ts';

const PM2_BIN = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const ADMIN_TOKEN = 'pm2-test-admin-token';

export interface Pm2App {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number; exit_code?: number; unstable_restarts?: number; pm_exec_path?: string };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export class Pm2Sandbox {
  readonly dir: string;
  readonly dataDir: string;
  readonly watchDir: string;
  readonly port: number;
  readonly api: StudioApi;
  readonly env: NodeJS.ProcessEnv;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.dataDir = join(dir, 'data');
    this.watchDir = join(dir, 'watched-src');
    mkdirSync(this.watchDir, { recursive: true });
    this.api = new StudioApi(`http://127.0.0.1:${port}`, ADMIN_TOKEN);
    this.env = {
      ...process.env,
      PM2_HOME: join(dir, 'pm2'),
      // No banner, no calls to PM2's version server (this sandbox has no network).
      PM2_DISCRETE_MODE: '1',
      PM2_DISABLE_VERSION_CHECK: '1',
      STUDIO_DEV_DATA_DIR: this.dataDir,
      STUDIO_PORT: String(port),
      STUDIO_DEV_WATCH_PATH: this.watchDir,
      STUDIO_ADMIN_TOKEN: ADMIN_TOKEN,
      STUDIO_WORKER_LOG: 'info',
    };
  }

  static async create(prefix: string): Promise<Pm2Sandbox> {
    return new Pm2Sandbox(mkdtempSync(join(tmpdir(), prefix)), await freePort());
  }

  get workerConfig(): string {
    return join(this.dataDir, 'dev-worker', 'config.toml');
  }

  /** Run a command with this sandbox's environment, from the repo root. */
  exec(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, args, { cwd: ROOT, env: this.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('close', (code) => resolve({ code, output }));
    });
  }

  async pm2(...args: string[]): Promise<string> {
    const result = await this.exec([PM2_BIN, ...args]);
    if (result.code !== 0) throw new Error(`pm2 ${args.join(' ')} exited ${result.code}:\n${result.output}`);
    return result.output;
  }

  async start(only: string): Promise<void> {
    await this.pm2('start', 'ecosystem.config.cjs', '--only', only);
  }

  async jlist(): Promise<Pm2App[]> {
    const output = await this.pm2('jlist');
    // jlist prints the JSON on its own line; anything else is PM2 talking.
    const line = output.split('\n').find((candidate) => candidate.startsWith('['));
    if (!line) throw new Error(`pm2 jlist printed no JSON:\n${output}`);
    return JSON.parse(line) as Pm2App[];
  }

  async app(name: string): Promise<Pm2App | undefined> {
    return (await this.jlist()).find((app) => app.name === name);
  }

  /** The approved dev worker (scripts/dev-worker.ts, as a developer runs it). */
  async provisionWorker(): Promise<string> {
    const result = await this.exec([join(ROOT, 'scripts', 'dev-worker.ts'), '--local-api-port', '0']);
    if (result.code !== 0) throw new Error(`dev-worker.ts failed:\n${result.output}`);
    const match = result.output.match(/the approved dev worker (\S+);/);
    if (!match) throw new Error(`dev-worker.ts printed no worker id:\n${result.output}`);
    return match[1] as string;
  }

  /** The daemon's pid from its state.json (written by the daemon itself). */
  daemonPid(): number | undefined {
    try {
      return (JSON.parse(readFileSync(join(this.dataDir, 'dev-worker', 'state.json'), 'utf8')) as { pid: number }).pid;
    } catch {
      return undefined;
    }
  }

  log(name: string): string {
    const read = (file: string) => {
      try {
        return readFileSync(join(this.dataDir, 'logs', file), 'utf8');
      } catch {
        return '';
      }
    };
    return read(`${name}.out.log`) + read(`${name}.err.log`);
  }

  /**
   * Every live process of this sandbox except PM2's own daemon: the studio, the watcher, the daemon
   * and any engine child all inherit PM2_HOME from it (their command lines do not help: PM2 renames
   * its children's process titles). Linux /proc.
   */
  processesLeft(): Array<{ pid: number; cmd: string }> {
    const marker = `PM2_HOME=${this.env.PM2_HOME}`;
    let god = -1;
    try {
      god = Number(readFileSync(join(this.env.PM2_HOME as string, 'pm2.pid'), 'utf8').trim());
    } catch {
      // PM2 is not running
    }
    const left: Array<{ pid: number; cmd: string }> = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === god || Number(entry) === process.pid) continue;
      try {
        if (readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z') continue;
        if (!readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(marker)) continue;
        left.push({ pid: Number(entry), cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() });
      } catch {
        // gone meanwhile, or not ours to read
      }
    }
    return left;
  }

  /** Stop PM2's own daemon and remove the sandbox. */
  async destroy(): Promise<void> {
    await this.exec([PM2_BIN, 'kill']);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
