import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobGate } from '../../../src/platform/job-gate.ts';
import { BadVersions } from '../../../src/update/bad-versions.ts';
import type { CommandResult, CommandRunner, RunOptions } from '../../../src/update/command-runner.ts';
import { FeedClient } from '../../../src/update/feed.ts';
import { VersionsInstaller } from '../../../src/update/installer.ts';
import { INSTALLED_MARKER, updatePaths } from '../../../src/update/paths.ts';
import { readPointer, writePointer, type CurrentPointer } from '../../../src/update/pointer.ts';
import { recordStartup } from '../../../src/update/started-marker.ts';
import type { ExitStatus, Launcher, Successor } from '../../../src/update/successor.ts';
import { AutoUpdater, type AutoUpdaterOptions, type AutoUpdateSettings, type HandoverOptions } from '../../../src/update/updater.ts';
import { FakeFeed, recordingFetch } from './fake-feed.ts';
import { captureLog } from './log-capture.ts';
import { fakeEntryScript, type FakeBehaviour } from './tarball.ts';

/** npm, as the installer sees it: records each call, and "installs" by creating node_modules. */
export class FakeRunner implements CommandRunner {
  readonly calls: Array<{ command: string; args: string[]; cwd: string; sawManifest: boolean; env: NodeJS.ProcessEnv | undefined }> = [];
  result: Partial<CommandResult> = {};
  /** Replace to script a call (e.g. wait for the abort). */
  behaviour: (options: RunOptions) => Promise<void> = async () => {};

  async run(command: string, args: readonly string[], options: RunOptions): Promise<CommandResult> {
    this.calls.push({ command, args: [...args], cwd: options.cwd, sawManifest: existsSync(join(options.cwd, 'package.json')), env: options.env });
    await this.behaviour(options);
    const result: CommandResult = { code: 0, signal: null, stdout: '', stderr: '', ...this.result };
    if (result.code === 0) await mkdir(join(options.cwd, 'node_modules', 'left-pad'), { recursive: true });
    return result;
  }
}

/**
 * The restart hook without real processes: a started "version" behaves as told — `healthy` writes
 * started.json as a daemon would, `crash` exits at once, `hang` does neither until stopped.
 */
export class FakeLauncher implements Launcher {
  readonly starts: Array<{ entry: string; env: Record<string, string>; pid: number }> = [];
  readonly stopped: number[] = [];
  readonly detached: number[] = [];
  readonly #configDir: string;
  readonly #events: string[];
  behaviourOf: (version: string) => FakeBehaviour = () => 'healthy';

  constructor(configDir: string, events: string[]) {
    this.#configDir = configDir;
    this.#events = events;
  }

  start(entry: string, env: Record<string, string>): Successor {
    const version = versionOfEntry(entry);
    const pid = 900_000 + this.starts.length;
    this.starts.push({ entry, env, pid });
    this.#events.push(`start ${version}`);
    let exit!: (status: ExitStatus) => void;
    const exited = new Promise<ExitStatus>((resolve) => (exit = resolve));
    const behaviour = this.behaviourOf(version);
    if (behaviour === 'healthy') void recordStartup(this.#configDir, { version, pid });
    if (behaviour === 'crash') exit({ code: 3, signal: null });
    return {
      pid,
      exited,
      stop: async () => {
        this.stopped.push(pid);
        exit({ code: null, signal: 'SIGTERM' });
      },
      detach: () => void this.detached.push(pid),
    };
  }
}

export function versionOfEntry(entry: string): string {
  const match = /[\\/]versions[\\/]([^\\/]+)[\\/]/.exec(entry);
  if (!match?.[1]) throw new Error(`not a versions/<v>/ entry: ${entry}`);
  return match[1];
}

export interface World {
  dir: string;
  dataDir: string;
  configDir: string;
  paths: ReturnType<typeof updatePaths>;
  feed: FakeFeed;
  fetched: string[];
  runner: FakeRunner;
  launcher: FakeLauncher;
  gate: JobGate;
  logs: ReturnType<typeof captureLog>;
  /** Ordered: "stop 0.1.0", "start 0.2.0", … */
  events: string[];
  settings: AutoUpdateSettings;
  /** The installed 0.1.0's entry (the running version, for rollbacks). */
  previousEntry: string;
  updater(options?: { handover?: Partial<HandoverOptions>; packageRoot?: string; env?: NodeJS.ProcessEnv; tickMs?: number; gate?: AutoUpdaterOptions['gate']; currentVersion?: string; firstCheckMs?: number }): AutoUpdater;
  pointer(): Promise<CurrentPointer | null>;
  badVersions(): Promise<Record<string, { reason: string }>>;
  cleanup(): Promise<void>;
}

/**
 * A data dir with 0.1.0 installed and current, a config dir, the fake feed, and updaters wired
 * to fakes of npm and of the restart (real files, real HTTP, real gate).
 */
export async function makeWorld(): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'studio-worker-update-'));
  const dataDir = join(dir, 'data');
  const configDir = join(dir, 'config');
  await mkdir(configDir, { recursive: true });
  const paths = updatePaths(dataDir);
  const previousEntry = await installFakeVersion(dataDir, '0.1.0', 'healthy');
  await writePointer(paths.current, { version: '0.1.0', switchedAt: new Date().toISOString() });
  // The "running" package is an npm-style install (not a checkout), so updates are allowed.
  const packageRoot = join(dir, 'lib', 'node_modules', 'studio-worker');
  await mkdir(packageRoot, { recursive: true });

  const feed = await FakeFeed.start();
  const recorder = recordingFetch();
  const events: string[] = [];
  const runner = new FakeRunner();
  const launcher = new FakeLauncher(configDir, events);
  const gate = new JobGate();
  const logs = captureLog();
  const settings: AutoUpdateSettings = { enabled: true, intervalSecs: 120, feed: feed.url('/studio-worker'), prerelease: false };
  const client = new FeedClient({ http: { fetch: recorder.fetch, userAgent: 'studio-worker/0.1.0' } });

  return {
    dir,
    dataDir,
    configDir,
    paths,
    feed,
    fetched: recorder.urls,
    runner,
    launcher,
    gate,
    logs,
    events,
    settings,
    previousEntry,
    updater(options = {}) {
      return new AutoUpdater({
        currentVersion: options.currentVersion ?? '0.1.0',
        settings: () => settings,
        gate: options.gate ?? gate,
        feed: client,
        installer: new VersionsInstaller({ dataDir, currentVersion: '0.1.0', packageRoot: options.packageRoot ?? packageRoot, runner, npm: { command: 'npm', prefixArgs: [] }, env: { PATH: '/usr/bin' }, log: logs.log }),
        badVersions: new BadVersions(paths.badVersions),
        downloadsDir: paths.downloads,
        pendingFile: paths.pending,
        handover: {
          stopCurrent: async () => void events.push('stop 0.1.0'),
          launcher,
          configDir,
          previousEntry,
          healthTimeoutMs: 5_000,
          settleMs: 0,
          pollMs: 10,
          ...options.handover,
        },
        log: logs.log,
        env: options.env ?? {},
        ...(options.tickMs ? { tickMs: options.tickMs } : {}),
        ...(options.firstCheckMs !== undefined ? { firstCheckMs: options.firstCheckMs } : {}),
      });
    },
    pointer: () => readPointer(paths.current),
    async badVersions() {
      try {
        return (JSON.parse(await readFile(paths.badVersions, 'utf8')) as { versions: Record<string, { reason: string }> }).versions;
      } catch {
        return {};
      }
    },
    async cleanup() {
      await feed.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An already installed version (as the updater would have left it); resolves with its entry. */
export async function installFakeVersion(dataDir: string, version: string, behaviour: FakeBehaviour): Promise<string> {
  const versionDir = join(updatePaths(dataDir).versions, version);
  await mkdir(join(versionDir, 'bin'), { recursive: true });
  await writeFile(join(versionDir, 'package.json'), JSON.stringify({ name: 'studio-worker', version, type: 'module', bin: { 'studio-worker': './bin/studio-worker.js' } }));
  const entry = join(versionDir, 'bin', 'studio-worker.js');
  await writeFile(entry, fakeEntryScript(version, behaviour), { mode: 0o755 });
  await writeFile(join(versionDir, INSTALLED_MARKER), JSON.stringify({ version }));
  return entry;
}
