import { spawn } from 'node:child_process';
import { entryPointFile } from '../../package-layout.ts';
import { EngineFailure } from '../engine.ts';
import { assertSize, renderSyntheticImage, type SyntheticImageExt } from './image.ts';
import { throwIfAborted } from './pacing.ts';
import { renderSyntheticVideo } from './video.ts';

export interface RenderRequest {
  kind: 'image' | 'video';
  prompt: string;
  width: number;
  height: number;
  ext: string;
}

/**
 * Above this many pixels a render runs in a child process: its encode takes long enough (a lossless
 * WebP of 4096² takes about two seconds, 8192² about nine) that a cancel must be able to kill it.
 * Below it, rendering in-process stays well under a second and saves the process start.
 */
export const CHILD_RENDER_PIXELS = 4 * 1024 * 1024;

/**
 * The synthetic image or video for a task, stopped within milliseconds by `signal`: the pattern is
 * painted in bands that look at the signal, and a large render happens in a child process that an
 * abort kills.
 */
export async function renderSynthetic(request: RenderRequest, signal: AbortSignal): Promise<{ bytes: Uint8Array; ext: string }> {
  assertSize(request.width, request.height);
  if (request.width * request.height <= CHILD_RENDER_PIXELS) {
    const out =
      request.kind === 'video'
        ? await renderSyntheticVideo(request.prompt, request.width, request.height, signal)
        : await renderSyntheticImage(request.prompt, request.width, request.height, request.ext, signal);
    return { bytes: out.bytes, ext: out.ext };
  }
  const bytes = await renderInChild(request, signal);
  const ext: SyntheticImageExt = request.kind === 'video' || request.ext === 'webp' ? 'webp' : 'png';
  return { bytes, ext };
}

function renderInChild(request: RenderRequest, signal: AbortSignal): Promise<Uint8Array> {
  throwIfAborted(signal);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entryPointFile('synthetic-render'), JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const onAbort = () => child.kill('SIGKILL');
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(new EngineFailure('engine_error', `the synthetic render process did not start: ${error.message}`, { retryable: true }));
    });
    child.once('close', (code) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) {
        try {
          throwIfAborted(signal);
        } catch (error) {
          reject(error);
        }
        return;
      }
      if (code === 0) resolve(new Uint8Array(Buffer.concat(out)));
      else reject(new EngineFailure('engine_error', `the synthetic render process failed (exit ${code}): ${err.trim().slice(0, 500) || 'no output'}`, { retryable: true }));
    });
  });
}
