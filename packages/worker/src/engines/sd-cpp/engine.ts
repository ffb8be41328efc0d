import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ImageTask, TaskKind } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { EngineFailure, filesOfRole, toEngineFailure, type Engine, type EngineAvailability, type EngineContext, type EngineJob, type EngineResult } from '../engine.ts';
import { buildSdApiRequest, buildSdCliArgs, buildSdServerArgs, modelFileArgs, OPTIONAL_SWITCHES, previewArgs, type InputImages, type ModelOptions } from './args.ts';
import { HelpReader, type BinaryHelp } from './help.ts';
import { binDir, lookupProgram, PROGRAM_ENV, type ProgramLookup, type ProgramName, type ResolvedProgram } from './binary.ts';
import { SdCppEngineConfig, type SdCppEngineConfigInput } from './config.ts';
import { fetchInputImage, type InputImage } from './input-images.ts';
import { resultExtFor, toResultImage } from './output.ts';
import { runSdCli } from './per-job.ts';
import type { GroupChild } from './process.ts';
import { installedRelease, installRelease, type InstalledRelease, type ReleaseSpec } from './release.ts';
import { ResidentServers } from './resident.ts';
import { defaultLibraryDirs, findVulkanLoader, missingVulkanReason, VulkanBuildDetector } from './vulkan.ts';
import type { WatchdogLimits } from './watchdog.ts';

export interface SdCppEngineDeps {
  log: Logger;
  /** `<models_root>`; the engine looks for (and installs) binaries in `<models_root>/bin/`. */
  modelsRoot: string;
  /** The environment to resolve programs in and pass on (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Default process.platform; the Vulkan preflight runs on Linux only. */
  platform?: NodeJS.Platform;
  /** For input images and the release download (default global fetch). */
  fetch?: typeof fetch;
  /** User agent for the release download, e.g. "studio-worker/0.1.0". */
  userAgent?: string;
}

/** After a failed release install, probes try again after this long. */
const RELEASE_RETRY_MS = 60_000;

/**
 * stable-diffusion.cpp (original-spec §6.3): `sd-cli` per job, or `sd-server` resident per model.
 * Serves image tasks whose ModelSource names "sd-cpp"; never falls back to anything else.
 */
export class SdCppEngine implements Engine {
  readonly name = 'sd-cpp';
  readonly kinds: readonly TaskKind[] = ['image'];
  readonly #config: SdCppEngineConfig;
  readonly #log: Logger;
  readonly #modelsRoot: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #platform: NodeJS.Platform;
  readonly #fetch: typeof fetch | undefined;
  readonly #userAgent: string | undefined;
  readonly #limits: WatchdogLimits;
  readonly #vulkan = new VulkanBuildDetector();
  readonly #help = new HelpReader();
  readonly #resident: ResidentServers;
  readonly #children = new Set<GroupChild>();
  #install: Promise<InstalledRelease> | undefined;
  #installFailure: { message: string; at: number } | undefined;

  constructor(config: SdCppEngineConfigInput, deps: SdCppEngineDeps) {
    this.#config = SdCppEngineConfig.parse(config);
    this.#log = deps.log;
    this.#modelsRoot = deps.modelsRoot;
    this.#env = deps.env ?? process.env;
    this.#platform = deps.platform ?? process.platform;
    this.#fetch = deps.fetch;
    this.#userAgent = deps.userAgent;
    this.#limits = {
      loadMs: this.#config.loadTimeoutSecs * 1000,
      stepMs: this.#config.stepTimeoutSecs * 1000,
      silenceMs: this.#config.silenceTimeoutSecs * 1000,
    };
    this.#resident = new ResidentServers(this.#log, this.#limits);
  }

  get mode(): 'per-job' | 'resident' {
    return this.#config.mode;
  }

  /** The program this mode runs: sd-cli per job, sd-server when resident. */
  get #programName(): ProgramName {
    return this.#config.mode === 'resident' ? 'sd-server' : 'sd-cli';
  }

  async probe(): Promise<EngineAvailability> {
    const located = await this.#locate(this.#programName, { wait: false });
    if (!located.found) return { available: false, reason: located.reason };
    const vulkanProblem = await this.#vulkanProblem(located.program);
    if (vulkanProblem !== undefined) return { available: false, reason: vulkanProblem };
    const resident = this.#resident.current();
    const mode = this.#config.mode === 'resident' ? `resident${resident === undefined ? '' : `, ${resident.label} loaded`}` : 'per-job';
    const help = await this.#help.read(located.program, this.#childEnv(located.program));
    return { available: true, detail: `${located.program.name} at ${located.program.file} (${mode}; ${describeBuild(help, located.program.name)})` };
  }

  advertisedModels(): Partial<Record<TaskKind, readonly string[]>> {
    // The router advertises "sd-cpp:*"; which models run is the studio registry's business.
    return {};
  }

  async run(job: EngineJob, ctx: EngineContext): Promise<EngineResult> {
    const task = job.task;
    if (task.kind !== 'image') {
      throw new EngineFailure('bad_input', `the sd-cpp engine runs image tasks, not ${task.kind}`, { retryable: false });
    }
    if (task.maskUrl !== undefined && task.initImageUrl === undefined && task.refImageUrl === undefined) {
      throw new EngineFailure('bad_input', 'maskUrl needs an initImageUrl (img2img) or a refImageUrl (reference mode) to apply to', { retryable: false });
    }
    // Fails as bad_input before anything is fetched or started when the source has no model file.
    modelFileArgs(job);
    const located = await this.#locate(this.#programName, { wait: true, signal: ctx.signal });
    if (!located.found) throw new EngineFailure('engine_unavailable', located.reason, { retryable: true });
    const vulkanProblem = await this.#vulkanProblem(located.program);
    if (vulkanProblem !== undefined) throw new EngineFailure('engine_unavailable', vulkanProblem, { retryable: true });

    const help = await this.#help.read(located.program, this.#childEnv(located.program));
    const inputs = await this.#fetchInputs(task, ctx);
    const options: ModelOptions = { diffusionFa: this.#config.diffusionFa, extraArgs: this.#config.extraArgs };
    if (help.flags !== undefined) options.supportedFlags = help.flags;
    let image: Uint8Array;
    let producer: string;
    if (this.#config.mode === 'resident') {
      producer = 'sd-server';
      const request = buildSdApiRequest(task, job.source.cliDefaults, {
        ...(inputs.init && { init: inputs.init.bytes }),
        ...(inputs.mask && { mask: inputs.mask.bytes }),
        ...(inputs.ref && { ref: inputs.ref.bytes }),
      }, filesOfRole(job, 'lora'));
      const args = buildSdServerArgs(job, options);
      const spec = {
        key: JSON.stringify([located.program.command, args, this.#config.env]),
        label: modelLabel(job),
        command: located.program.command,
        args,
        env: this.#childEnv(located.program),
      };
      image = await this.#resident.generate(spec, request, ctx);
    } else {
      producer = 'sd-cli';
      image = await this.#runPerJob(job, task, inputs, located.program, options, ctx);
    }
    if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
    ctx.progress({ phase: 'encoding', message: `encoding ${resultExtFor(task.ext)}` });
    const result = await toResultImage(image, task.ext, producer);
    if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
    return { type: 'file', bytes: result.bytes, ext: result.ext };
  }

  async close(): Promise<void> {
    await Promise.all([this.#resident.close(), ...[...this.#children].map((child) => child.kill())]);
  }

  /** The resident server's model and pid, or undefined (per-job mode, or nothing loaded). */
  residentServer(): { label: string; pid: number; port: number } | undefined {
    return this.#resident.current();
  }

  /**
   * Install the pinned release (release_url + release_sha256) into `<models_root>/bin/` unless it
   * is already there. Concurrent calls share one download. Probes start it in the background.
   */
  installRelease(signal?: AbortSignal): Promise<InstalledRelease> {
    const spec = this.#releaseSpec();
    if (spec === undefined) return Promise.reject(new Error('no release_url / release_sha256 configured in [engines.sd-cpp]'));
    this.#install ??= (async () => {
      const dir = binDir(this.#modelsRoot);
      const present = await installedRelease(dir, spec);
      if (present !== undefined) return present;
      const options: Parameters<typeof installRelease>[2] = { log: this.#log };
      if (this.#fetch !== undefined) options.fetch = this.#fetch;
      if (this.#userAgent !== undefined) options.userAgent = this.#userAgent;
      if (signal !== undefined) options.signal = signal;
      return installRelease(dir, spec, options);
    })().then(
      (installed) => {
        this.#installFailure = undefined;
        return installed;
      },
      (error: unknown) => {
        this.#installFailure = { message: error instanceof Error ? error.message : String(error), at: Date.now() };
        this.#install = undefined;
        throw error;
      },
    );
    return this.#install;
  }

  #releaseSpec(): ReleaseSpec | undefined {
    const { releaseUrl, releaseSha256 } = this.#config;
    return releaseUrl !== undefined && releaseSha256 !== undefined ? { url: releaseUrl, sha256: releaseSha256 } : undefined;
  }

  /**
   * Find the program. The pinned release applies only where the original would provision: no
   * explicit path in the table and none in the environment.
   */
  async #locate(name: ProgramName, options: { wait: boolean; signal?: AbortSignal }): Promise<ProgramLookup> {
    const configured = name === 'sd-cli' ? this.#config.sdCli : this.#config.sdServer;
    const fromEnv = this.#env[PROGRAM_ENV[name]];
    const usesRelease = configured === undefined && (fromEnv === undefined || fromEnv.trim() === '') && this.#releaseSpec() !== undefined;
    if (usesRelease) {
      const spec = this.#releaseSpec() as ReleaseSpec;
      const installed = await installedRelease(binDir(this.#modelsRoot), spec);
      if (installed === undefined) {
        const failure = this.#installFailure;
        if (!options.wait) {
          if (failure !== undefined && Date.now() - failure.at < RELEASE_RETRY_MS) {
            return { found: false, reason: `installing the pinned sd.cpp release failed: ${failure.message} (trying again within a minute)` };
          }
          this.installRelease().catch(() => undefined);
          return { found: false, reason: `installing the pinned sd.cpp release from ${spec.url} into ${binDir(this.#modelsRoot)} (downloading)` };
        }
        try {
          await this.installRelease(options.signal);
        } catch (error) {
          if (options.signal?.aborted) throw toEngineFailure(options.signal.reason, options.signal);
          return { found: false, reason: `installing the pinned sd.cpp release failed: ${(error as Error).message}` };
        }
      }
    }
    return lookupProgram(name, { configured, env: this.#env, modelsRoot: this.#modelsRoot, platform: this.#platform });
  }

  async #vulkanProblem(program: ResolvedProgram): Promise<string | undefined> {
    if (!this.#config.vulkanCheck || this.#platform !== 'linux') return undefined;
    if (!(await this.#vulkan.isVulkanBuild(program.file))) return undefined;
    const dirs = this.#config.vulkanLibraryDirs ?? (await defaultLibraryDirs(this.#env, program.file));
    if ((await findVulkanLoader(dirs)) !== undefined) return undefined;
    return missingVulkanReason(program.file, dirs);
  }

  /** The child's environment: ours, the table's `env`, and the program's directory on the library path. */
  #childEnv(program: ResolvedProgram): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...this.#env, ...this.#config.env };
    const libraryVar = this.#platform === 'darwin' ? 'DYLD_LIBRARY_PATH' : this.#platform === 'win32' ? undefined : 'LD_LIBRARY_PATH';
    if (libraryVar !== undefined) {
      const dir = dirname(program.file);
      env[libraryVar] = env[libraryVar] ? `${dir}:${env[libraryVar]}` : dir;
    }
    return env;
  }

  async #fetchInputs(task: ImageTask, ctx: EngineContext): Promise<{ init?: InputImage; mask?: InputImage; ref?: InputImage }> {
    const options: Parameters<typeof fetchInputImage>[4] = { signal: ctx.signal, policy: ctx.inputUrls };
    if (this.#fetch !== undefined) options.fetch = this.#fetch;
    const get = (url: string | undefined, field: string, name: string) =>
      url === undefined ? Promise.resolve(undefined) : fetchInputImage(url, field, ctx.workDir, name, options);
    // Reference mode wins over img2img (original-spec §6.3), so the init image is not even fetched.
    const useRef = task.refImageUrl !== undefined;
    const [init, mask, ref] = await Promise.all([
      useRef ? Promise.resolve(undefined) : get(task.initImageUrl, 'initImageUrl', 'init'),
      get(task.maskUrl, 'maskUrl', 'mask'),
      get(task.refImageUrl, 'refImageUrl', 'ref'),
    ]);
    return { ...(init && { init }), ...(mask && { mask }), ...(ref && { ref }) };
  }

  async #runPerJob(job: EngineJob, task: ImageTask, inputs: { init?: InputImage; mask?: InputImage; ref?: InputImage }, program: ResolvedProgram, options: ModelOptions, ctx: EngineContext): Promise<Uint8Array> {
    const output = join(ctx.workDir, 'out.png');
    const paths: InputImages = {
      ...(inputs.init && { init: inputs.init.path }),
      ...(inputs.mask && { mask: inputs.mask.path }),
      ...(inputs.ref && { ref: inputs.ref.path }),
    };
    const previewPath = join(ctx.workDir, 'preview.png');
    const preview = previewArgs(this.#config.preview, previewPath, options.supportedFlags);
    const args = [...buildSdCliArgs(job, task, paths, output, options), ...preview];
    await runSdCli(
      {
        program,
        args,
        ...(preview.length > 0 && { previewPath }),
        env: this.#childEnv(program),
        limits: this.#limits,
        log: this.#log,
        onChild: (child, running) => {
          if (running) this.#children.add(child);
          else this.#children.delete(child);
        },
      },
      ctx,
    );
    try {
      return new Uint8Array(await readFile(output));
    } catch {
      throw new EngineFailure('engine_error', `sd-cli exited with 0 but wrote no image to ${output}`, { retryable: true });
    }
  }
}

/** "build master-669-2d40a8b, commit 2d40a8b; lacks --model-args" for the engine status. */
function describeBuild(help: BinaryHelp, program: ProgramName): string {
  const build = `build ${help.build ?? 'unknown'}`;
  if (help.flags === undefined) return `${build}; ${help.problem ?? 'its --help was not readable'}, so every flag is passed as configured`;
  // Live previews are sd-cli's alone.
  const lacking = OPTIONAL_SWITCHES.filter((flag) => !help.flags?.has(flag) && !(program === 'sd-server' && flag === '--preview'));
  return lacking.length === 0 ? build : `${build}; lacks ${lacking.join(', ')}`;
}

function modelLabel(job: EngineJob): string {
  const main = filesOfRole(job, 'diffusion-model')[0] ?? filesOfRole(job, 'model')[0];
  return main !== undefined ? basename(main.path) : job.model;
}

/** The factory the worker's engine roster calls with the `[engines.sd-cpp]` table. */
export function createSdCppEngine(config: SdCppEngineConfigInput, deps: SdCppEngineDeps): SdCppEngine {
  return new SdCppEngine(config, deps);
}
