// A large synthetic render in a process of its own (entry point `synthetic-render`), so that a cancel
// stops it at once: sharp's encoder cannot be interrupted (a lossless WebP of 8192² takes seconds),
// a process can be killed. Argument: the JSON of a RenderRequest; stdout: the encoded bytes.
import { renderSyntheticImage } from './image.ts';
import type { RenderRequest } from './render.ts';
import { renderSyntheticVideo } from './video.ts';

const request = JSON.parse(process.argv[2] ?? '{}') as RenderRequest;
try {
  const out =
    request.kind === 'video'
      ? await renderSyntheticVideo(request.prompt, request.width, request.height)
      : await renderSyntheticImage(request.prompt, request.width, request.height, request.ext);
  process.stdout.write(out.bytes);
} catch (error) {
  process.stderr.write(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
