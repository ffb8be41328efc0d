// Shared parts of the fake sd-cli and sd-server: stable-diffusion.cpp's option table, its log and
// progress-bar output, and a PNG writer. Plain JavaScript that runs on any Node >= 18.
// Mimics stable-diffusion.cpp at commit 97d29908 (pinned release master-669-2d40a8b):
// examples/common/common.cpp (options tables, parse_options, ArgOptions::print), src/core/util.cpp
// (print_progress_line, pretty_progress, pretty_bytes_progress), examples/common/log.cpp.
import { existsSync, readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { extname } from 'node:path';

// The option table: ONE data file (sd-cpp-flags.json, extracted from sd.cpp's options tables at the
// commit it names) that the argv builder's test checks our flags against too.
const FLAGS = JSON.parse(readFileSync(new URL('./sd-cpp-flags.json', import.meta.url), 'utf8'));
export const FLAG_TABLE = FLAGS;
/** Flags this fake build pretends not to have (FAKE_SD_LACKS="--a,--b"): an older or trimmed build. */
const LACKS = new Set((process.env.FAKE_SD_LACKS ?? '').split(',').filter(Boolean));
export const CLI_ONLY = FLAGS.cli;
export const SERVER_ONLY = FLAGS.server;

/** [short, long, kind] of every option a program accepts: the common tables plus its own. */
function optionList(extra) {
  const out = [];
  for (const tables of [FLAGS.common, extra]) {
    for (const kind of ['string', 'int', 'float', 'bool', 'manual']) {
      for (const entry of tables[kind]) {
        const names = entry.split(' ');
        const long = names[names.length - 1];
        const short = names.length > 1 ? names[0] : '';
        if (LACKS.has(long)) continue;
        let effective = kind;
        if (kind === 'manual') effective = FLAGS.noValue.includes(long) ? 'bool' : FLAGS.repeated.includes(long) ? 'repeated' : 'string';
        out.push([short, long, effective]);
      }
    }
  }
  return out;
}

/** print_usage + ArgOptions::print: `  -m, --model <string>    …`, one line per option. */
export function printHelp(program, extra) {
  const hint = { string: ' <string>', int: ' <int>', float: ' <float>', bool: '', repeated: ' <string>' };
  const lines = optionList(extra).map(([short, long, kind]) => `  ${short ? `${short}, ` : ''}${long}${hint[kind]}`);
  process.stdout.write(`stable-diffusion.cpp version master-fake-0000000, commit 0000000\nUsage: ${program} [options]\n\nOptions:\n${lines.join('\n')}\n`);
}

export const SAMPLE_METHODS = [
  'euler', 'euler_a', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'dpm++2mv2', 'ipndm', 'ipndm_v', 'lcm',
  'ddim_trailing', 'tcd', 'res_multistep', 'res_2s',
];

/**
 * Parse argv the way sd.cpp's parse_options does: long and short names, one value each (-r may
 * repeat), numbers checked. Answers { options } keyed by long name, or { error }.
 */
export function parseArgs(argv, extra) {
  const kinds = new Map();
  for (const [short, long, kind] of optionList(extra)) {
    if (short) kinds.set(short, { kind, long });
    kinds.set(long, { kind, long });
  }
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const spec = kinds.get(arg);
    if (spec === undefined) return { error: `error: unknown argument: ${arg}` };
    if (spec.kind === 'bool') {
      options[spec.long] = true;
      continue;
    }
    if (i + 1 >= argv.length) return { error: `error: missing argument for ${arg}` };
    const value = argv[++i];
    if (spec.kind === 'int') {
      if (!/^-?\d+$/.test(value)) return { error: `error: invalid parameter for argument: ${arg}` };
      options[spec.long] = Number(value);
    } else if (spec.kind === 'float') {
      if (!/^-?(\d+\.?\d*|\.\d+)$/.test(value)) return { error: `error: invalid parameter for argument: ${arg}` };
      options[spec.long] = Number(value);
    } else if (spec.kind === 'repeated') {
      (options[spec.long] ??= []).push(value);
    } else {
      options[spec.long] = value;
    }
  }
  return { options };
}

/** sd.cpp's log line: `[INFO ] file.cpp:123  - message`; ERROR goes to stderr, the rest to stdout. */
export function log(level, file, line, message) {
  const text = `[${level.padEnd(5)}] ${file}:${String(line).padEnd(4)} - ${message}\n`;
  if (level === 'ERROR') process.stderr.write(text);
  else process.stdout.write(text);
}

/**
 * src/core/util.cpp's print_progress_line: redrawn in place with \r, a newline after the last step.
 * Sampling bars (pretty_progress) draw `=` with a `>` head; the tensor-loading bar
 * (pretty_bytes_progress, since 563137a5) draws `#` without a head.
 */
export function progressBar(step, steps, speedText, fill = '=', head = true) {
  const width = 50;
  const current = Math.floor((step * width) / steps);
  let bar = '  |';
  for (let i = 0; i < width; i++) bar += i > current ? ' ' : head && i === current && i !== width - 1 ? '>' : fill;
  bar += '|';
  process.stdout.write(`\r${bar} ${step}/${steps} - ${speedText}\x1b[K${step === steps ? '\n' : ''}`);
}

export function speedText(seconds) {
  return seconds > 0 && seconds < 1 ? `${(1 / seconds).toFixed(2)}it/s` : `${seconds.toFixed(2)}s/it`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Loading as sd.cpp logs it, with the tensor-loading bar (`#`, MB/s). */
export async function simulateLoad(files, loadMs) {
  for (const [what, path] of files) log('INFO', 'stable-diffusion.cpp', 236, `loading ${what} from '${path}'`);
  const chunks = 4;
  for (let i = 1; i <= chunks; i++) {
    if (loadMs > 0) await sleep(loadMs / chunks);
    progressBar(i, chunks, '812.35MB/s', '#', false);
  }
  log('INFO', 'model.cpp', 2339, `loading tensors completed, taking ${(loadMs / 1000).toFixed(2)}s`);
  log('INFO', 'stable-diffusion.cpp', 704, 'total params memory size = 6133.62MB (VRAM 6133.62MB, RAM 0.00MB)');
}

/** The image files sd.cpp opens, checked the way stb_image would: by content for the extension. */
const MAGIC = {
  '.png': (b) => b.length > 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47,
  '.jpg': (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
  '.jpeg': (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
  '.bmp': (b) => b.length > 2 && b[0] === 0x42 && b[1] === 0x4d,
  '.gif': (b) => b.length > 6 && b.toString('latin1', 0, 4) === 'GIF8',
};

/** Whether sd-cli could load this image file: exists, and its bytes match its extension's decoder. */
export function loadableImage(path) {
  if (!existsSync(path)) return false;
  const check = MAGIC[extname(path).toLowerCase()];
  return check !== undefined && check(readFileSync(path));
}

/** The same check for image bytes sent over HTTP (sd-server decodes by content). */
export function decodableBytes(bytes) {
  return Object.values(MAGIC).some((check) => check(bytes));
}

// ---- PNG ----------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** An RGB PNG of the given size: a gradient tinted by the seed, so different seeds differ. */
export function renderPng(width, height, seed) {
  const tint = Number(BigInt.asUintN(32, BigInt(seed))) % 256;
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0;
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = Math.floor((x * 255) / Math.max(1, width - 1));
      raw[row + 2 + x * 3] = Math.floor((y * 255) / Math.max(1, height - 1));
      raw[row + 3 + x * 3] = tint;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The model files a context is loaded from, as sd.cpp names them in its log. */
export function modelFiles(options) {
  const files = [];
  if (options['--model']) files.push(['model', options['--model']]);
  if (options['--diffusion-model']) files.push(['diffusion model', options['--diffusion-model']]);
  if (options['--llm'] ?? options['--qwen2vl']) files.push(['llm', options['--llm'] ?? options['--qwen2vl']]);
  if (options['--llm_vision'] ?? options['--qwen2vl_vision']) files.push(['llm vision', options['--llm_vision'] ?? options['--qwen2vl_vision']]);
  for (const flag of ['--clip_l', '--clip_g', '--t5xxl']) if (options[flag]) files.push([flag.slice(2), options[flag]]);
  if (options['--vae']) files.push(['vae', options['--vae']]);
  return files;
}

/**
 * new_sd_ctx's checks: a model is required and every file must open. Answers the error lines the
 * real one prints (to stderr) or undefined.
 */
export function contextErrors(options) {
  if (!options['--model'] && !options['--diffusion-model']) {
    return ['error: the following arguments are required: model_path/diffusion_model_path'];
  }
  for (const [, path] of modelFiles(options)) {
    if (!existsSync(path)) return [`init model loader from file failed: '${path}'`, 'new_sd_ctx_t failed'];
  }
  if (options['--lora-model-dir'] && !existsSync(options['--lora-model-dir'])) {
    return [`lora model dir '${options['--lora-model-dir']}' does not exist`, 'new_sd_ctx_t failed'];
  }
  return undefined;
}

export function validateGeneration(options) {
  if (options['--seed'] !== undefined && !/^-?\d+$/.test(options['--seed'])) return 'error: invalid parameter for argument: --seed';
  const method = options['--sampling-method'];
  if (method !== undefined && !SAMPLE_METHODS.includes(method)) return `error: invalid sample method ${method}`;
  for (const key of ['--width', '--height', '--steps']) {
    if (options[key] !== undefined && options[key] <= 0) return `error: ${key.slice(2)} must be positive`;
  }
  const strength = options['--strength'];
  if (strength !== undefined && (strength < 0 || strength > 1)) return 'error: can only work with strength in [0.0, 1.0]';
  return undefined;
}
