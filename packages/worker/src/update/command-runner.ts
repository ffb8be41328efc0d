import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface CommandResult {
  /** Null when the command was killed by a signal (or never started). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Each line npm writes to stderr, as it comes (progress); the whole output is still returned. */
  onStderrLine?: (line: string) => void;
}

/** Runs a program to completion (the installer's `npm install`); tests put a fake here. */
export interface CommandRunner {
  run(command: string, args: readonly string[], options: RunOptions): Promise<CommandResult>;
}

/** Output beyond this is dropped from the front; the end of npm's output says what went wrong. */
const OUTPUT_CAP = 64 * 1024;

/** A real child process; output is captured (capped), a timeout or an abort kills it. */
export const spawnRunner: CommandRunner = {
  run(command, args, options) {
    return new Promise((resolve) => {
      let stdout = '';
      let stderr = '';
      const child = spawn(command, [...args], {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        windowsHide: true,
        // npm is a .cmd on Windows, which only a shell can run.
        shell: process.platform === 'win32' && /\.cmd$/i.test(command),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
      });
      child.stdout.on('data', (chunk: Buffer) => (stdout = capped(stdout + chunk.toString('utf8'))));
      let partial = '';
      child.stderr.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        stderr = capped(stderr + text);
        if (!options.onStderrLine) return;
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) options.onStderrLine(line);
      });
      child.on('error', (error) => {
        stderr = capped(`${stderr}${error.message}\n`);
      });
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
  },
};

function capped(text: string): string {
  return text.length > OUTPUT_CAP ? text.slice(text.length - OUTPUT_CAP) : text;
}

/**
 * How to run npm with the Node that runs this worker: npm's own script when npm started us
 * (`npm_execpath`) or when it sits next to this Node, else `npm` from PATH.
 */
export function npmInvocation(env: NodeJS.ProcessEnv = process.env, execPath: string = process.execPath): { command: string; prefixArgs: string[] } {
  const fromNpm = env.npm_execpath;
  if (fromNpm && /npm-cli\.c?js$/.test(fromNpm) && existsSync(fromNpm)) return { command: execPath, prefixArgs: [fromNpm] };
  const bundled = [join(dirname(execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'), join(dirname(execPath), 'node_modules', 'npm', 'bin', 'npm-cli.js')];
  for (const script of bundled) if (existsSync(script)) return { command: execPath, prefixArgs: [script] };
  return { command: process.platform === 'win32' ? 'npm.cmd' : 'npm', prefixArgs: [] };
}

/** npm settings a user would want to keep (their registry, offline mode, proxy, CA) when npm runs for the updater. */
const KEPT_NPM_CONFIG = /^npm_config_(registry|offline|prefer_offline|userconfig|globalconfig|cache|proxy|https_proxy|noproxy|no_proxy|cafile|ca|strict_ssl|@.*:registry)$/i;

/**
 * The environment for the dependency install: ours, minus the `npm_*` variables an `npm run` that
 * started the daemon left behind (`npm_config_local_prefix` would make npm install into that
 * project instead of the version folder), keeping the user's registry, proxy and CA settings.
 */
export function npmEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (/^npm_/i.test(key) && !KEPT_NPM_CONFIG.test(key)) continue;
    out[key] = value;
  }
  return out;
}
