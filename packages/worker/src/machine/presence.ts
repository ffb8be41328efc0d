import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';
import type { Logger } from '@studio-worker/log';
import { Periodic } from './periodic.ts';

/**
 * User presence for `only_when_idle` (original-spec §3.15): how long since the person at this
 * machine last touched keyboard or mouse. Each platform has small probes, each a command whose output
 * is parsed here, tried in order until one answers:
 * - Linux X11: `xprintidle` (ms since the last input, from the X ScreenSaver extension);
 * - Linux Wayland (GNOME): `gdbus … org.gnome.Mutter.IdleMonitor.GetIdletime` (ms);
 * - Linux Wayland (KDE and others): `gdbus … org.freedesktop.ScreenSaver.GetSessionIdleTime` (s);
 * - Linux, any session: logind's `IdleHint` / `IdleSinceHint` via `loginctl show-session`;
 * - macOS: `ioreg -c IOHIDSystem -d 4`, `"HIDIdleTime" = <ns>`;
 * - Windows: a PowerShell one-liner around user32's GetLastInputInfo (ms).
 */
export type Presence = 'idle' | 'active';

export interface IdleReading {
  idleMs: number;
  /** Which probe answered, for status lines. */
  source: string;
}

/** Runs a command and answers its stdout, or throws. Injected so tests can script the commands. */
export type RunCommand = (file: string, args: readonly string[], env: NodeJS.ProcessEnv) => Promise<string>;

const PROBE_TIMEOUT_MS = 3_000;

export const runCommand: RunCommand = (file, args, env) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { env, timeout: PROBE_TIMEOUT_MS, windowsHide: true, maxBuffer: 1 << 20 }, (error, stdout) => {
      if (error) reject(error);
      else resolve(String(stdout));
    });
  });

interface Probe {
  name: string;
  /** Whether it is worth trying in this environment. */
  applies(env: NodeJS.ProcessEnv): boolean;
  read(run: RunCommand, env: NodeJS.ProcessEnv, now: number): Promise<number>;
}

/** `xprintidle`: one number, milliseconds. */
export function parseXprintidle(output: string): number {
  const value = Number(output.trim());
  if (!Number.isFinite(value) || value < 0) throw new Error(`xprintidle printed ${JSON.stringify(output.trim().slice(0, 40))}, not milliseconds`);
  return value;
}

/** gdbus answers a GVariant tuple: `(uint64 12345,)` or `(uint32 12,)`. */
export function parseGdbusNumber(output: string): number {
  const match = /\((?:u?int(?:32|64)\s+)?(\d+),?\)/.exec(output);
  if (match?.[1] === undefined) throw new Error(`gdbus printed ${JSON.stringify(output.trim().slice(0, 60))}, not a number`);
  return Number(match[1]);
}

/**
 * `loginctl show-session <id> -p IdleHint -p IdleSinceHint`: `IdleHint=yes|no` and
 * `IdleSinceHint=<µs since the epoch>`. Not idle → 0 ms.
 */
export function parseLoginctl(output: string, now: number): number {
  const props = new Map(
    output
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );
  const hint = props.get('IdleHint');
  if (hint !== 'yes' && hint !== 'no') throw new Error('loginctl gave no IdleHint for the session');
  if (hint === 'no') return 0;
  const since = Number(props.get('IdleSinceHint'));
  if (!Number.isFinite(since) || since <= 0) throw new Error('loginctl says idle but gives no IdleSinceHint');
  return Math.max(0, now - since / 1000);
}

/** `ioreg -c IOHIDSystem -d 4`: `"HIDIdleTime" = 1234567890` (nanoseconds). */
export function parseIoreg(output: string): number {
  const match = /"HIDIdleTime"\s*=\s*(\d+)/.exec(output);
  if (match?.[1] === undefined) throw new Error('ioreg listed no HIDIdleTime');
  return Number(match[1]) / 1e6;
}

/** The PowerShell one-liner prints one number: milliseconds since the last input. */
export function parseWindowsIdle(output: string): number {
  const value = Number(output.trim());
  if (!Number.isFinite(value) || value < 0) throw new Error(`PowerShell printed ${JSON.stringify(output.trim().slice(0, 40))}, not milliseconds`);
  return value;
}

const WINDOWS_SCRIPT =
  "Add-Type 'using System;using System.Runtime.InteropServices;public struct LII{public uint cbSize;public uint dwTime;}public static class U{[DllImport(\"user32.dll\")]public static extern bool GetLastInputInfo(ref LII p);}';" +
  '$l=New-Object LII;$l.cbSize=8;[void][U]::GetLastInputInfo([ref]$l);[Environment]::TickCount-[int]$l.dwTime';

async function loginctlSession(run: RunCommand, env: NodeJS.ProcessEnv): Promise<string> {
  if (env.XDG_SESSION_ID) return env.XDG_SESSION_ID;
  // A daemon started by systemd --user has no XDG_SESSION_ID: take this user's first session.
  const list = await run('loginctl', ['list-sessions', '--no-legend'], env);
  const uid = String(userInfo().uid);
  for (const line of list.split(/\r?\n/)) {
    const [session, sessionUid] = line.trim().split(/\s+/);
    if (session && sessionUid === uid) return session;
  }
  throw new Error('loginctl lists no session of this user');
}

const LINUX_PROBES: Probe[] = [
  { name: 'xprintidle', applies: (env) => Boolean(env.DISPLAY), read: async (run, env) => parseXprintidle(await run('xprintidle', [], env)) },
  {
    name: 'gnome-idle-monitor',
    applies: (env) => Boolean(env.WAYLAND_DISPLAY || env.DBUS_SESSION_BUS_ADDRESS),
    read: async (run, env) =>
      parseGdbusNumber(
        await run('gdbus', ['call', '--session', '--dest', 'org.gnome.Mutter.IdleMonitor', '--object-path', '/org/gnome/Mutter/IdleMonitor/Core', '--method', 'org.gnome.Mutter.IdleMonitor.GetIdletime'], env),
      ),
  },
  {
    name: 'freedesktop-screensaver',
    applies: (env) => Boolean(env.WAYLAND_DISPLAY || env.DBUS_SESSION_BUS_ADDRESS),
    read: async (run, env) =>
      1000 *
      parseGdbusNumber(
        await run('gdbus', ['call', '--session', '--dest', 'org.freedesktop.ScreenSaver', '--object-path', '/org/freedesktop/ScreenSaver', '--method', 'org.freedesktop.ScreenSaver.GetSessionIdleTime'], env),
      ),
  },
  {
    name: 'logind',
    applies: () => true,
    read: async (run, env, now) => parseLoginctl(await run('loginctl', ['show-session', await loginctlSession(run, env), '-p', 'IdleHint', '-p', 'IdleSinceHint'], env), now),
  },
];

const PROBES: Partial<Record<NodeJS.Platform, Probe[]>> = {
  linux: LINUX_PROBES,
  freebsd: LINUX_PROBES,
  darwin: [{ name: 'ioreg', applies: () => true, read: async (run, env) => parseIoreg(await run('ioreg', ['-c', 'IOHIDSystem', '-d', '4'], env)) }],
  win32: [
    {
      name: 'GetLastInputInfo',
      applies: () => true,
      read: async (run, env) => parseWindowsIdle(await run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', WINDOWS_SCRIPT], env)),
    },
  ],
};

/** Idle time from the first probe that answers; throws with every probe's reason when none does. */
export async function readIdleTime(options: { platform?: NodeJS.Platform; env?: NodeJS.ProcessEnv; run?: RunCommand; now?: number } = {}): Promise<IdleReading> {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  const run = options.run ?? runCommand;
  const probes = (PROBES[platform] ?? []).filter((probe) => probe.applies(env));
  if (probes.length === 0) throw new Error(`no user-presence probe for ${platform}`);
  const problems: string[] = [];
  for (const probe of probes) {
    try {
      return { idleMs: await probe.read(run, env, options.now ?? Date.now()), source: probe.name };
    } catch (error) {
      problems.push(`${probe.name}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(problems.join('; '));
}

export interface PresenceOptions {
  log: Logger;
  /** Idle at least this long → `idle` (original-spec §3.15: 120 s). */
  idleAfterMs: () => number;
  sampleMs: () => number;
  /** Sample only while this is true (only_when_idle on). */
  wanted: () => boolean;
  onChange: () => void;
  read?: () => Promise<IdleReading>;
}

/**
 * Samples idle time every `sampleMs` while `wanted()`; `presence` is idle, active or undefined
 * (unknown: no probe answered, which holds work back like active). A failing probe is warned once
 * per distinct error.
 */
export class PresenceMonitor {
  readonly #options: PresenceOptions;
  #presence: Presence | undefined;
  #last: IdleReading | undefined;
  #lastError: string | undefined;
  readonly #loop: Periodic;

  constructor(options: PresenceOptions) {
    this.#options = options;
    this.#loop = new Periodic(() => this.sample(), options.sampleMs);
  }

  get presence(): Presence | undefined {
    return this.#presence;
  }

  /** For status: what the last sample said. */
  snapshot(): { presence: Presence | 'unknown'; idleSecs?: number; source?: string; problem?: string } {
    const out: { presence: Presence | 'unknown'; idleSecs?: number; source?: string; problem?: string } = { presence: this.#presence ?? 'unknown' };
    if (this.#last !== undefined && this.#presence !== undefined) {
      out.idleSecs = Math.round(this.#last.idleMs / 1000);
      out.source = this.#last.source;
    }
    if (this.#presence === undefined && this.#lastError !== undefined) out.problem = this.#lastError;
    return out;
  }

  start(): void {
    this.#loop.start();
  }

  stop(): void {
    this.#loop.stop();
  }

  /** Take one sample now (also used by the loop). */
  async sample(): Promise<void> {
    if (!this.#options.wanted()) {
      this.#set(undefined);
      return;
    }
    try {
      const reading = await (this.#options.read ?? (() => readIdleTime()))();
      this.#last = reading;
      this.#lastError = undefined;
      this.#set(reading.idleMs >= this.#options.idleAfterMs() ? 'idle' : 'active');
    } catch (error) {
      const message = (error as Error).message;
      if (message !== this.#lastError) {
        this.#options.log.warn({ op: 'presence', problem: message }, `cannot tell whether the user is idle (${message}); only_when_idle holds work back until a probe answers`);
      }
      this.#lastError = message;
      this.#set(undefined);
    }
  }

  #set(presence: Presence | undefined): void {
    if (presence === this.#presence) return;
    this.#presence = presence;
    this.#options.log.info({ op: 'presence', presence: presence ?? 'unknown' }, `user presence: ${presence ?? 'unknown'}`);
    this.#options.onChange();
  }
}
