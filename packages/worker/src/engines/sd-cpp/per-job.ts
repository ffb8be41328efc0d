import type { Logger } from '@studio-worker/log';
import { EngineFailure, toEngineFailure, type EngineContext } from '../engine.ts';
import type { ResolvedProgram } from './binary.ts';
import { GenerationMonitor } from './monitor.ts';
import { PreviewFile } from './preview-file.ts';
import { describeExit, GroupChild } from './process.ts';
import type { WatchdogLimits } from './watchdog.ts';

export interface SdCliRun {
  program: ResolvedProgram;
  args: string[];
  env: NodeJS.ProcessEnv;
  limits: WatchdogLimits;
  log: Logger;
  /** Told when the child starts and when it is gone, so close() can reach a running one. */
  onChild?: (child: GroupChild, running: boolean) => void;
  /** Where sd-cli writes its live preview (`--preview-path`), when previews are on. */
  previewPath?: string;
}

/**
 * Run sd-cli once and wait for it: progress from its output, the watchdogs, and the abort signal
 * all end it by killing its whole process group. Resolves on exit 0; anything else throws.
 */
export async function runSdCli(run: SdCliRun, ctx: EngineContext): Promise<void> {
  if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
  const preview = run.previewPath === undefined ? undefined : new PreviewFile(run.previewPath, (update) => ctx.progress(update));
  const monitor = new GenerationMonitor(
    {
      progress: (update) => {
        if (update.phase === 'generating') preview?.check(update);
        else if (update.phase === 'encoding') preview?.close();
        ctx.progress(update);
      },
    },
    run.limits,
    'sd-cli',
  );
  const child = new GroupChild(run.program.command, run.args, {
    env: run.env,
    cwd: ctx.workDir,
    onLine: (line, stream) => {
      monitor.line(line);
      run.log.trace({ op: 'sdcpp_output', stream, line }, 'sd-cli');
    },
  });
  run.onChild?.(child, true);
  run.log.debug({ op: 'sdcpp_spawn', pid: child.pid, command: run.program.command, args: run.args }, 'sd-cli started');
  monitor.start('starting sd-cli (loading the model)');

  let onAbort: () => void = () => undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const outcome = await Promise.race([child.exited, monitor.fired, aborted]);
    if (outcome === 'aborted') {
      await child.kill();
      run.log.info({ op: 'sdcpp_cancel', pid: child.pid }, 'sd-cli killed: job aborted');
      throw toEngineFailure(ctx.signal.reason, ctx.signal);
    }
    if ('name' in outcome) {
      await child.kill();
      run.log.warn({ op: 'sdcpp_watchdog', pid: child.pid, watchdog: outcome.name }, outcome.message);
      throw new EngineFailure('engine_error', `${outcome.message}; sd-cli was killed (last output: ${child.lastLine()})`, { retryable: true });
    }
    if (outcome.code === 0) return;
    throw new EngineFailure('engine_error', `sd-cli ${describeExit(outcome)}: ${child.lastLine()}`, { retryable: true });
  } finally {
    preview?.close();
    monitor.stop();
    ctx.signal.removeEventListener('abort', onAbort);
    // Whatever the leader did, nothing it spawned outlives the job.
    await child.kill(0);
    run.onChild?.(child, false);
  }
}
