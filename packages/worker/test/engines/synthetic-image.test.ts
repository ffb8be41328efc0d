import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { labelPlacement, renderSyntheticImage } from '../../src/engines/synthetic/index.ts';

const digests = new Map<string, Buffer>();
function digestOf(prompt: string): Buffer {
  let d = digests.get(prompt);
  if (d === undefined) digests.set(prompt, (d = createHash('sha256').update(prompt).digest()));
  return d;
}

/** The §6.2 formula, written out again here so the engine is checked against an independent copy. */
function formulaPixel(prompt: string, width: number, height: number, x: number, y: number): [number, number, number] {
  const d = digestOf(prompt);
  const cheb = Math.max(Math.abs(x - width / 2) / (width / 2), Math.abs(y - height / 2) / (height / 2));
  const ring = Math.min(Math.floor(cheb * 6), 3);
  const phase = (Math.sin(x / 24) + Math.cos(y / 24)) * 12;
  return [
    saturatingAddU8(d[ring * 3]!, i8AsU8(phase)),
    saturatingAddU8(d[ring * 3 + 1]!, i8AsU8(phase * 0.7)),
    saturatingAddU8(d[ring * 3 + 2]!, i8AsU8(phase * 1.3)),
  ];
}

/** Rust's `f as i8 as u8`: truncate toward zero, saturate to −128..127 (NaN → 0), reinterpret as u8. */
function i8AsU8(f: number): number {
  return Math.max(-128, Math.min(127, Math.trunc(f))) & 0xff;
}

/** Rust's `u8::saturating_add`. */
function saturatingAddU8(a: number, b: number): number {
  return Math.min(255, a + b);
}

async function decode(bytes: Uint8Array) {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number): [number, number, number] => {
    const o = (y * info.width + x) * info.channels;
    return [data[o]!, data[o + 1]!, data[o + 2]!];
  };
  return { data, info, at };
}

function insideLabel(width: number, height: number, x: number, y: number): boolean {
  const label = labelPlacement(width, height);
  return label !== null && x < label.bandWidth && y < label.bandHeight;
}

test("the formula's Rust casts: f as i8 as u8 truncates, saturates and wraps negatives; u8 add saturates", () => {
  assert.equal(i8AsU8(0), 0);
  assert.equal(i8AsU8(12.9), 12);
  assert.equal(i8AsU8(-0.9), 0);
  assert.equal(i8AsU8(-1.5), 255);
  assert.equal(i8AsU8(-24), 232);
  assert.equal(i8AsU8(200), 127);
  assert.equal(i8AsU8(-300), 128);
  assert.equal(i8AsU8(Number.NaN), 0);
  assert.equal(saturatingAddU8(200, 100), 255);
  assert.equal(saturatingAddU8(10, 20), 30);
});

for (const [ext, format] of [['png', 'png'], ['webp', 'webp']] as const) {
  test(`image: ${ext} at the requested size, every pixel outside the label follows the formula`, async () => {
    const prompt = 'a lighthouse at dusk';
    const [width, height] = [640, 360];
    const image = await renderSyntheticImage(prompt, width, height, ext);
    assert.equal(image.ext, ext);
    const meta = await sharp(image.bytes).metadata();
    assert.equal(meta.format, format);
    assert.equal(meta.width, width);
    assert.equal(meta.height, height);

    const { at } = await decode(image.bytes);
    let checked = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (insideLabel(width, height, x, y)) continue;
        const got = at(x, y);
        const want = formulaPixel(prompt, width, height, x, y);
        if (got[0] !== want[0] || got[1] !== want[1] || got[2] !== want[2]) {
          assert.deepEqual(got, want, `pixel (${x}, ${y})`);
        }
        checked++;
      }
    }
    assert.ok(checked > width * height * 0.9, 'the label covers only a small corner');
  });
}

test('image: odd sizes (a centre between pixels, rings cut off) and several prompts follow the formula pixel for pixel', async () => {
  for (const [prompt, width, height] of [['odd one', 333, 211], ['odd two', 333, 211], ['tall', 97, 601]] as const) {
    const { at } = await decode((await renderSyntheticImage(prompt, width, height, 'png')).bytes);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (insideLabel(width, height, x, y)) continue;
        const got = at(x, y);
        const want = formulaPixel(prompt, width, height, x, y);
        if (got[0] !== want[0] || got[1] !== want[1] || got[2] !== want[2]) assert.deepEqual(got, want, `${prompt} ${width}×${height}: pixel (${x}, ${y})`);
      }
    }
  }
});

test('image: spot pixels at 512×512 match the formula (cheb = max(|x−256|, |y−256|)/256)', async () => {
  const prompt = 'spot check';
  const { at } = await decode((await renderSyntheticImage(prompt, 512, 512, 'png')).bytes);
  for (const [x, y] of [[256, 256], [300, 100], [10, 400], [511, 511], [200, 300], [480, 5]] as const) {
    assert.deepEqual(at(x, y), formulaPixel(prompt, 512, 512, x, y), `pixel (${x}, ${y})`);
  }
  // The innermost ring at the centre takes palette colour 0 plus the phase offsets.
  const d = createHash('sha256').update(prompt).digest();
  const phase = (Math.sin(256 / 24) + Math.cos(256 / 24)) * 12;
  assert.equal(at(256, 256)[0], Math.min(255, d[0]! + (Math.trunc(phase) & 0xff)));
});

test('image: the SYNTHETIC label is stamped top-left as white ink on a dark band', async () => {
  const prompt = 'label check';
  const [width, height] = [512, 512];
  const label = labelPlacement(width, height);
  assert.ok(label !== null);
  assert.ok(label.bandWidth >= width / 5 && label.bandWidth <= width / 3, `label width ${label.bandWidth} is about a quarter of ${width}`);
  const { at } = await decode((await renderSyntheticImage(prompt, width, height, 'png')).bytes);
  let ink = 0;
  let band = 0;
  let differsFromFormula = 0;
  for (let y = 0; y < label.bandHeight; y++) {
    for (let x = 0; x < label.bandWidth; x++) {
      const [r, g, b] = at(x, y);
      if (r === 255 && g === 255 && b === 255) ink++;
      else if (r === 16 && g === 16 && b === 16) band++;
      else assert.fail(`pixel (${x}, ${y}) in the label is neither ink nor band: ${r},${g},${b}`);
      const want = formulaPixel(prompt, width, height, x, y);
      if (want[0] !== r || want[1] !== g || want[2] !== b) differsFromFormula++;
    }
  }
  assert.ok(ink > 100, `bright label pixels: ${ink}`);
  assert.ok(band > ink, `dark band pixels: ${band}`);
  assert.ok(differsFromFormula > (label.bandWidth * label.bandHeight) / 2);
  // The band ends where the label says: the pixel right of it follows the formula again.
  assert.deepEqual(at(label.bandWidth, 0), formulaPixel(prompt, width, height, label.bandWidth, 0));
});

test('image: too small for the label → no label, pure formula', async () => {
  assert.equal(labelPlacement(16, 16), null);
  const prompt = 'tiny';
  const { at, info } = await decode((await renderSyntheticImage(prompt, 16, 16, 'webp')).bytes);
  assert.equal(info.width, 16);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) assert.deepEqual(at(x, y), formulaPixel(prompt, 16, 16, x, y));
});

test('image: deterministic — same prompt gives identical bytes, another prompt other pixels', async () => {
  const a1 = await renderSyntheticImage('same prompt', 256, 192, 'webp');
  const a2 = await renderSyntheticImage('same prompt', 256, 192, 'webp');
  assert.ok(Buffer.from(a1.bytes).equals(Buffer.from(a2.bytes)));
  const p1 = await renderSyntheticImage('same prompt', 256, 192, 'png');
  const p2 = await renderSyntheticImage('same prompt', 256, 192, 'png');
  assert.ok(Buffer.from(p1.bytes).equals(Buffer.from(p2.bytes)));
  const other = await renderSyntheticImage('another prompt', 256, 192, 'webp');
  const pixelsA = (await decode(a1.bytes)).data;
  const pixelsB = (await decode(other.bytes)).data;
  assert.equal(pixelsA.length, pixelsB.length);
  assert.ok(!pixelsA.equals(pixelsB), "different prompts give different pixels");
});

test('image: an ext other than png/webp is encoded as PNG and reported as png', async () => {
  const image = await renderSyntheticImage('jpeg please', 64, 64, 'jpg');
  assert.equal(image.ext, 'png');
  assert.equal((await sharp(image.bytes).metadata()).format, 'png');
});

test('image: an impossible size is a bad_input failure, not a crash', async () => {
  await assert.rejects(renderSyntheticImage('x', 0, 64, 'png'), { name: 'EngineFailure', code: 'bad_input', retryable: false });
  await assert.rejects(renderSyntheticImage('x', 64, 1.5, 'png'), { code: 'bad_input' });
});
