import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compositePatch, cropAround, featherWeights, maskBoundingBox } from '../../src/engines/onnx/composite.ts';
import { Mutex as JobLock } from '../../src/platform/mutex.ts';
import { chooseInputSize } from '../../src/engines/onnx/model-io.ts';
import { parsePipelineOptions, type PipelineOptions, type ValueRange } from '../../src/engines/onnx/options.ts';
import { imageToTensor, tensorChannelUnit, tensorPlanes, tensorToImage, type RawImage } from '../../src/engines/onnx/tensors.ts';
import { ProtoWriter } from './fixtures/onnx/protobuf.ts';

function options(cliDefaults: Record<string, unknown> = {}): PipelineOptions {
  const parsed = parsePipelineOptions(cliDefaults);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
  return parsed.options;
}

test('cliDefaults: presets per pipeline, overrides, other engines’ keys ignored, errors name the key', () => {
  const inpaint = options({ steps: 20, cfgScale: 7, width: null });
  assert.equal(inpaint.pipeline, 'inpaint');
  assert.equal(inpaint.normalize, '0-1');
  assert.equal(inpaint.outputRange, '0-255', 'LaMa exports answer in 0..255');
  assert.equal(inpaint.featherSigma, 4);
  assert.equal(inpaint.maskThreshold, 127);
  assert.equal(options({ pipeline: 'matte' }).outputRange, '0-1');
  assert.equal(options({ pipeline: 'upscale', normalize: '-1-1' }).outputRange, '-1-1');
  assert.equal(options({ pipeline: 'upscale', normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } }).outputRange, '0-1');
  assert.equal(options({ pipeline: 'inpaint', outputRange: '0-1' }).outputRange, '0-1');
  assert.deepEqual(options({ inputSize: [640, 480] }).inputSize, [640, 480]);

  for (const [bad, key] of [
    [{ pipeline: 'denoise' }, 'pipeline'],
    [{ layout: 'NCWH' }, 'layout'],
    [{ inputSize: 0 }, 'inputSize'],
    [{ normalize: { mean: [0.5, 0.5, 0.5], std: [0, 1, 1] } }, 'normalize'],
    [{ featherSigma: -1 }, 'featherSigma'],
  ] as const) {
    const parsed = parsePipelineOptions(bad);
    assert.ok(!parsed.ok);
    assert.match(parsed.message, new RegExp(`${key}`), parsed.message);
  }
});

test('imageToTensor: NCHW planes in RGB or BGR order, NHWC interleaved, each value range', () => {
  // Two pixels: (10, 20, 30) and (40, 50, 60).
  const image: RawImage = { data: Uint8Array.from([10, 20, 30, 40, 50, 60]), width: 2, height: 1, channels: 3 };
  const nchw = imageToTensor(image, { layout: 'NCHW', channelOrder: 'RGB' }, '0-255');
  assert.deepEqual(nchw.dims, [1, 3, 1, 2]);
  assert.deepEqual([...nchw.data], [10, 40, 20, 50, 30, 60]);
  assert.deepEqual([...imageToTensor(image, { layout: 'NCHW', channelOrder: 'BGR' }, '0-255').data], [30, 60, 20, 50, 10, 40]);
  const nhwc = imageToTensor(image, { layout: 'NHWC', channelOrder: 'RGB' }, '0-255');
  assert.deepEqual(nhwc.dims, [1, 1, 2, 3]);
  assert.deepEqual([...nhwc.data], [10, 20, 30, 40, 50, 60]);
  const close = (a: readonly number[], b: readonly number[]) => a.every((v, i) => Math.abs(v - (b[i] ?? NaN)) < 1e-6);
  assert.ok(close([...imageToTensor(image, { layout: 'NHWC', channelOrder: 'RGB' }, '0-1').data].slice(0, 1), [10 / 255]));
  assert.ok(close([...imageToTensor(image, { layout: 'NHWC', channelOrder: 'RGB' }, '-1-1').data].slice(0, 1), [10 / 127.5 - 1]));
  const meanStd = imageToTensor(image, { layout: 'NHWC', channelOrder: 'RGB' }, { mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 0.125] });
  assert.ok(close([...meanStd.data].slice(0, 3), [(10 / 255 - 0.1) / 0.5, (20 / 255 - 0.2) / 0.25, (30 / 255 - 0.3) / 0.125]));
});

test('tensorToImage inverts imageToTensor for every layout, channel order and range', () => {
  const data = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const image: RawImage = { data, width: 4, height: 3, channels: 3 };
  const ranges: ValueRange[] = ['0-1', '-1-1', '0-255', { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }];
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const channelOrder of ['RGB', 'BGR'] as const) {
      for (const range of ranges) {
        const tensor = imageToTensor(image, { layout, channelOrder }, range);
        const back = tensorToImage(tensorPlanes(tensor, layout), { layout, channelOrder }, range);
        assert.deepEqual([...back.data], [...data], `${layout} ${channelOrder} ${JSON.stringify(range)}`);
      }
    }
  }
});

test('tensorPlanes: rank 2 and 3 outputs, and errors for batches, ranks and sizes it cannot read', () => {
  assert.equal(tensorPlanes({ data: new Float32Array(6), dims: [2, 3] }, 'NCHW').channels, 1);
  assert.deepEqual(
    (({ width, height, channels }) => [width, height, channels])(tensorPlanes({ data: new Float32Array(24), dims: [2, 3, 4] }, 'NCHW')),
    [4, 3, 2],
  );
  assert.throws(() => tensorPlanes({ data: new Float32Array(12), dims: [2, 1, 2, 3] }, 'NCHW'), /batch is 2/);
  assert.throws(() => tensorPlanes({ data: new Float32Array(1), dims: [1, 1, 1, 1, 1] }, 'NCHW'), /rank 5/);
  assert.throws(() => tensorPlanes({ data: new Float32Array(5), dims: [1, 1, 2, 3] }, 'NCHW'), /do not match its 5 values/);
  assert.throws(() => tensorToImage(tensorPlanes({ data: new Float32Array(6), dims: [1, 1, 2, 3] }, 'NCHW'), { layout: 'NCHW', channelOrder: 'RGB' }, '0-1'), /needs 3/);
});

test('tensorChannelUnit: picks the channel, maps the range, clamps, and "minmax" stretches', () => {
  const planes = tensorPlanes({ data: Float32Array.from([0.2, 0.4, 0.6, -3, 9, 0.5]), dims: [1, 2, 1, 3] }, 'NCHW');
  assert.deepEqual([...tensorChannelUnit(planes, 0, '0-1', false)].map((v) => +v.toFixed(3)), [0.2, 0.4, 0.6]);
  assert.deepEqual([...tensorChannelUnit(planes, 0, '0-1', true)].map((v) => +v.toFixed(3)), [0, 0.5, 1]);
  assert.deepEqual([...tensorChannelUnit(planes, 1, '0-1', false)], [0, 1, 0.5]);
  assert.throws(() => tensorChannelUnit(planes, 2, '0-1', false), /alphaChannel 2/);
});

test('mask geometry: bounding box, a crop of at least the model size, clamped to the image', () => {
  const width = 100;
  const mask = new Uint8Array(100 * 80);
  for (let y = 30; y < 40; y++) for (let x = 60; x < 75; x++) mask[y * width + x] = 1;
  const box = maskBoundingBox(mask, 100, 80);
  assert.deepEqual(box, { left: 60, top: 30, width: 15, height: 10 });
  assert.equal(maskBoundingBox(new Uint8Array(16), 4, 4), null);

  // Large image, small mask: a 64² crop (the minimum) centred on the box.
  assert.deepEqual(cropAround({ left: 500, top: 400, width: 10, height: 10 }, 2000, 1000, 0.5, 64), { left: 473, top: 373, width: 64, height: 64 });
  // Near the corner: shifted inside the image.
  assert.deepEqual(cropAround({ left: 0, top: 2, width: 10, height: 10 }, 2000, 1000, 0.5, 64), { left: 0, top: 0, width: 64, height: 64 });
  // Padding: 40 px box with 0.5 padding → 80 px square.
  assert.deepEqual(cropAround({ left: 100, top: 100, width: 40, height: 20 }, 2000, 1000, 0.5, 16), { left: 80, top: 70, width: 80, height: 80 });
  // The image is smaller than the wanted square: the crop is the image.
  assert.deepEqual(cropAround({ left: 10, top: 10, width: 20, height: 20 }, 100, 50, 0.5, 512), { left: 0, top: 0, width: 100, height: 50 });
  // A box wider than the image is tall: the crop covers the box even though it cannot be square.
  assert.deepEqual(cropAround({ left: 0, top: 0, width: 300, height: 20 }, 300, 100, 0.5, 64), { left: 0, top: 0, width: 300, height: 100 });
});

test('featherWeights: exactly 0 outside the mask, ~½ on its edge, ~1 deep inside; σ = 0 is the mask', () => {
  const width = 60;
  const mask = new Uint8Array(60 * 60);
  for (let y = 10; y < 50; y++) for (let x = 10; x < 50; x++) mask[y * width + x] = 1;
  const weights = featherWeights(mask, 60, 60, 4);
  for (let i = 0; i < mask.length; i++) if (!mask[i]) assert.equal(weights[i], 0);
  assert.ok(Math.abs((weights[30 * width + 10] ?? 0) - 0.55) < 0.05, `edge weight ${weights[30 * width + 10]}`);
  assert.ok((weights[30 * width + 30] ?? 0) > 0.999);
  assert.ok((weights[30 * width + 12] ?? 0) > (weights[30 * width + 10] ?? 1));
  assert.deepEqual([...featherWeights(mask, 60, 60, 0)], [...mask]);
});

test('compositePatch: weight 0 keeps bytes, weight 1 takes the patch, alpha is never touched', () => {
  const image: RawImage = { data: Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80]), width: 2, height: 1, channels: 4 };
  const patch: RawImage = { data: Uint8Array.from([200, 200, 200, 100, 100, 100]), width: 2, height: 1, channels: 3 };
  const out = compositePatch(image, patch, { left: 0, top: 0, width: 2, height: 1 }, Float32Array.from([0, 1]));
  assert.deepEqual([...out.data], [10, 20, 30, 40, 100, 100, 100, 80]);
  const half = compositePatch(image, patch, { left: 0, top: 0, width: 2, height: 1 }, Float32Array.from([0.5, 0]));
  assert.deepEqual([...half.data.slice(0, 4)], [105, 110, 115, 40]);
});

test('chooseInputSize: cliDefaults, then the model’s fixed size, then the square preset, then the image (maxSide, multiple)', () => {
  const fixed = { name: 'image', shape: [1, 3, 256, 320] };
  const dynamic = { name: 'image', shape: ['N', 3, 'H', 'W'] };
  const image = { width: 1000, height: 750 };
  assert.deepEqual(chooseInputSize(fixed, options(), image), { width: 320, height: 256 });
  assert.deepEqual(chooseInputSize({ name: 'image', shape: [1, 256, 320, 3] }, options({ layout: 'NHWC' }), image), { width: 320, height: 256 });
  assert.deepEqual(chooseInputSize(dynamic, options({ inputSize: 384 }), image), { width: 384, height: 384 });
  assert.throws(() => chooseInputSize(fixed, options({ inputSize: 512 }), image), /fixed at 320×256/);
  assert.deepEqual(chooseInputSize(dynamic, options(), image, 512), { width: 512, height: 512 });
  assert.deepEqual(chooseInputSize(dynamic, options(), image), { width: 1000, height: 750 });
  assert.deepEqual(chooseInputSize(dynamic, options({ maxSide: 500, sizeMultiple: 32 }), image), { width: 512, height: 384 });
  assert.deepEqual(chooseInputSize(dynamic, options({ sizeMultiple: 32 }), { width: 10, height: 10 }), { width: 32, height: 32 });
});

test('JobLock: one holder at a time in arrival order; a waiter that is aborted leaves the queue', async () => {
  const lock = new JobLock();
  const order: string[] = [];
  const first = await lock.acquire(new AbortController().signal);
  const aborted = new AbortController();
  const skipped = lock.acquire(aborted.signal);
  const second = lock.acquire(new AbortController().signal).then((release) => {
    order.push('second');
    return release;
  });
  aborted.abort(new Error('gave up'));
  await assert.rejects(skipped, /gave up/);
  order.push('first done');
  first();
  (await second)();
  assert.deepEqual(order, ['first done', 'second']);
  // Free again.
  (await lock.acquire(new AbortController().signal))();
});

test('protobuf writer: varints, negative int64 as ten bytes, length-delimited fields', () => {
  assert.deepEqual([...new ProtoWriter().int(1, 300).finish()], [0x08, 0xac, 0x02]);
  const negative = new ProtoWriter().int(1, -1).finish();
  assert.equal(negative.length, 11);
  assert.equal(negative[10], 0x01);
  assert.deepEqual([...new ProtoWriter().string(2, 'hi').finish()], [0x12, 2, 0x68, 0x69]);
  assert.deepEqual([...new ProtoWriter().float(2, 1).finish()], [0x15, 0, 0, 0x80, 0x3f]);
});
