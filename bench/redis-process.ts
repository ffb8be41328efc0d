import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCpus } from './affinity.ts';
import { BenchError } from './errors.ts';
import { findOnPath, ownChild } from './child.ts';
import { freePort } from './studio-process.ts';

/** How the peer's Redis keeps its data: AOF fsynced once a second, or in memory only. */
export type RedisPersistence = 'aof-everysec' | 'none';

export const REDIS_INSTALL_HINT =
  'redis-server is not on PATH; the peer bench starts its own. Install it (Debian/Ubuntu: apt-get update && apt-get install -y redis-server; ' +
  'macOS: brew install redis), or put a redis-server 7 binary on PATH.';

/** A private redis-server child on a free loopback port, with its data in a temp dir. */
export interface RedisProcess {
  host: string;
  port: number;
  pid: number;
  persistence: RedisPersistence;
  peakRssMb(): number | undefined;
  cpuSeconds(): number | undefined;
  outputTail(): string;
  /** SIGTERM (SIGKILL after 5 s), then remove the data dir. Idempotent. */
  stop(): Promise<void>;
}

/** The first `redis-server` on PATH, or undefined. */
export function findRedisServer(path = process.env.PATH ?? ''): string | undefined {
  return findOnPath('redis-server', path);
}

/** Start redis-server; answers once it replies to PING. Throws `redis_missing` with install advice when there is none. */
export async function startRedis(persistence: RedisPersistence, options: { binary?: string; cpus?: string } = {}): Promise<RedisProcess> {
  const binary = options.binary ?? findRedisServer();
  if (!binary) throw new BenchError('redis_missing', REDIS_INSTALL_HINT);
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const port = await freePort();
  const persistenceArgs =
    persistence === 'aof-everysec' ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no'];
  const [command, args] = onCpus(options.cpus, binary, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistenceArgs, '--daemonize', 'no', '--loglevel', 'warning', '--logfile', '',
  ]);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const owned = ownChild(child, dir, 20);
  const redis: RedisProcess = {
    host: '127.0.0.1',
    port,
    pid: child.pid ?? -1,
    persistence,
    peakRssMb: owned.peakRssMb,
    cpuSeconds: owned.cpuSeconds,
    outputTail: owned.outputTail,
    stop: owned.stop,
  };
  const deadline = Date.now() + 10_000;
  while (!(await pong(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await redis.stop();
      throw new BenchError('redis_start_failed', `redis-server (${binary}) did not answer PING on port ${port}:\n${redis.outputTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return redis;
}

/** Whether a Redis on this loopback port answers PING. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      answer += data.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}
