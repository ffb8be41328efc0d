// Live previews (issue 13) on a real daemon process: ComfyUI's binary preview frames (a fake ComfyUI
// that sends them as the real one does) reach the studio inside progress frames — at most one a
// second, at most 64 KB — and only when the studio's welcome lists `preview`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { MAX_PREVIEW_BYTES } from '@studio-worker/protocol';
import { FakeComfyUI, TXT2IMG } from './engines/fakes/comfyui-server.ts';
import { STUDIO_FEATURES, type Frame } from './helpers/fake-studio.ts';
import { useScenarios } from './helpers/scenario.ts';

function comfyOffer(jobId: string): Frame {
  return {
    type: 'offer',
    claim: {
      jobId,
      gameId: 'game',
      assetName: `asset/${jobId}`,
      model: 'sdxl-comfy',
      vramGbEstimate: 0,
      task: { kind: 'image', prompt: 'a lighthouse at dusk', width: 64, height: 64, steps: 12, ext: 'png' },
      modelSource: { engine: 'comfyui', files: [], cliDefaults: { workflow: TXT2IMG } },
      attempt: 1,
    },
  };
}

describe('live previews (real daemon, fake ComfyUI)', () => {
  const scenario = useScenarios();

  it('ComfyUI previews travel with progress to a studio announcing preview: ≤ 1 per second, ≤ 64 KB, real images', async (t) => {
    const comfy = await FakeComfyUI.start({ previews: true, stepMs: 250, steps: 12 });
    t.after(() => comfy.close());
    const { studio, start } = await scenario({ extra: `[engines.comfyui]\nurl = "${comfy.url}"` });
    studio.welcomeFeatures = [...STUDIO_FEATURES, 'preview'];
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(comfyOffer('comfy-1'));
    await connection.jobFrame('accept', 'comfy-1');
    const acceptedAt = performance.now();
    await studio.waitFor(() => studio.uploads.find((u) => u.jobId === 'comfy-1'), 'the result upload');
    const elapsedSecs = (performance.now() - acceptedAt) / 1000;

    const previews = connection.frames.filter((f) => f.type === 'progress' && f.jobId === 'comfy-1' && f.preview !== undefined);
    assert.ok(previews.length >= 2, `previews arrive (${previews.length})`);
    assert.ok(previews.length <= Math.ceil(elapsedSecs) + 1, `at most one a second (${previews.length} in ${elapsedSecs.toFixed(1)} s)`);
    for (const frame of previews) {
      assert.equal(frame.preview.mime, 'image/jpeg');
      const bytes = Buffer.from(frame.preview.data, 'base64');
      assert.ok(bytes.length <= MAX_PREVIEW_BYTES);
      assert.equal((await sharp(bytes).metadata()).format, 'jpeg');
      assert.equal(frame.phase, 'generating');
      assert.ok(frame.step >= 1 && frame.total === 12, 'a preview comes with its step');
    }
    assert.equal((await daemon.stop()).code, 0);
  });

  it('no preview goes to a studio that does not announce the feature', async (t) => {
    const comfy = await FakeComfyUI.start({ previews: true, stepMs: 100, steps: 12 });
    t.after(() => comfy.close());
    const { studio, start } = await scenario({ extra: `[engines.comfyui]\nurl = "${comfy.url}"` });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(comfyOffer('comfy-2'));
    await connection.jobFrame('accept', 'comfy-2');
    await studio.waitFor(() => studio.uploads.find((u) => u.jobId === 'comfy-2'), 'the result upload');
    assert.ok(connection.frames.some((f) => f.type === 'progress' && f.jobId === 'comfy-2' && f.phase === 'generating'), 'progress was sent');
    assert.equal(connection.frames.filter((f) => f.type === 'progress' && f.preview !== undefined).length, 0);
    assert.ok(!connection.frames.some((f) => f.type === 'progress' && 'preview' in f));
    assert.equal((await daemon.stop()).code, 0);
  });
});
