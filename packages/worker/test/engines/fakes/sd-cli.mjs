#!/usr/bin/env node
// A faithful fake of stable-diffusion.cpp's sd-cli (examples/cli/main.cpp at commit 97d29908, the
// pinned release master-669-2d40a8b; flags from sd-cpp-flags.json, extracted from that commit): the same flags, the same
// validation and exit codes, the same log lines ([INFO ] on stdout, [ERROR] on stderr) and progress
// bar, and a real PNG of the requested size at -o. Runs on any Node >= 18.
//
// Scripted through the environment:
//   FAKE_SD_LOAD_MS        time spent loading (default 0)
//   FAKE_SD_STEP_MS        time per sampling step (default 2)
//   FAKE_SD_CRASH_AT_STEP  print a GPU error on stderr at that step and exit FAKE_SD_EXIT_CODE (default 1)
//   FAKE_SD_HANG           "load" | "step" | "decode": go silent there and never finish
//   FAKE_SD_HANG_AT_STEP   the step after which "step" hangs (default 1)
//   FAKE_SD_IGNORE_SIGTERM ignore SIGTERM (only SIGKILL stops it)
//   FAKE_SD_GRANDCHILD     spawn a grandchild (that also ignores SIGTERM) in the same process group
//   FAKE_SD_SKIP_OUTPUT    exit 0 without writing the image
//   FAKE_SD_LACKS          comma-separated flags this build does not have (an older build): unknown
//                          to the parser and missing from --help
// It records itself in argv.json next to the output: { argv, pid, grandchildPid, env }.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  CLI_ONLY,
  printHelp,
  contextErrors,
  loadableImage,
  log,
  modelFiles,
  parseArgs,
  progressBar,
  renderPng,
  simulateLoad,
  sleep,
  speedText,
  validateGeneration,
} from './sd-common.mjs';

const env = process.env;
const argv = process.argv.slice(2);
if (env.FAKE_SD_IGNORE_SIGTERM) process.on('SIGTERM', () => log('WARN', 'main.cpp', 1, 'ignoring SIGTERM'));

if (argv[0] === '--version') {
  process.stdout.write('stable-diffusion.cpp version master-fake-0000000, commit 0000000\n');
  process.exit(0);
}

if (argv.includes('--help') || argv.includes('-h')) {
  printHelp('sd-cli', CLI_ONLY);
  process.exit(0);
}

function fail(lines, code = 1) {
  for (const line of lines) {
    if (line.startsWith('error:')) process.stderr.write(`${line}\n`);
    else log('ERROR', 'main.cpp', 812, line);
  }
  process.exit(code);
}

const parsed = parseArgs(argv, CLI_ONLY);
if (parsed.error) {
  process.stderr.write(`${parsed.error}\n`);
  process.stdout.write('usage: sd-cli [options]\n');
  process.exit(1);
}
const options = parsed.options;
const output = resolve(options['--output'] ?? './output.png');

const record = { argv, pid: process.pid, grandchildPid: null, env: { LD_LIBRARY_PATH: env.LD_LIBRARY_PATH ?? null } };
const writeRecord = () => {
  mkdirSync(dirname(output), { recursive: true });
  writeFileSync(join(dirname(output), 'argv.json'), JSON.stringify(record, null, 2));
};
writeRecord();

if (env.FAKE_SD_GRANDCHILD) {
  const grandchild = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1 << 30);"], { stdio: 'ignore' });
  record.grandchildPid = grandchild.pid;
  writeRecord();
}

if (!options['--prompt'] && options['--mode'] !== 'convert') fail(['error: the following arguments are required: prompt']);
const invalid = validateGeneration(options);
if (invalid) fail([invalid]);
const contextProblem = contextErrors(options);
if (contextProblem) fail(contextProblem);

const hang = env.FAKE_SD_HANG ?? '';
const hangForever = () => setInterval(() => undefined, 1 << 30);

async function main() {
  const loadMs = Number(env.FAKE_SD_LOAD_MS ?? 0);
  if (hang === 'load') {
    log('INFO', 'stable-diffusion.cpp', 236, 'loading model');
    hangForever();
    return;
  }
  await simulateLoad(modelFiles(options), loadMs);

  // Images are read after the model, as sd-cli does, and by extension (stb_image).
  for (const [flag, path] of [
    ['--init-img', options['--init-img']],
    ['--mask', options['--mask']],
    ...(options['--ref-image'] ?? []).map((path) => ['--ref-image', path]),
  ]) {
    if (path !== undefined && !loadableImage(path)) fail([`load image from '${path}' failed`]);
  }

  const width = options['--width'] ?? 512;
  const height = options['--height'] ?? 512;
  const steps = options['--steps'] ?? 20;
  const seed = Number(options['--seed'] ?? 42);
  const stepMs = Number(env.FAKE_SD_STEP_MS ?? 2);
  const crashAt = Number(env.FAKE_SD_CRASH_AT_STEP ?? 0);
  const hangAt = Number(env.FAKE_SD_HANG_AT_STEP ?? 1);

  const method = options['--sampling-method'] ?? 'euler_a';
  log('INFO', 'stable-diffusion.cpp', 3093, `sampling using ${method} method`);
  log('INFO', 'stable-diffusion.cpp', 3104, `generating image: 1/1 - seed ${seed}`);
  for (let step = 1; step <= steps; step++) {
    await sleep(stepMs);
    if (step === crashAt) {
      process.stderr.write('ggml_vulkan: Device memory allocation of size 2147483648 failed.\n');
      log('ERROR', 'ggml-vulkan.cpp', 1634, 'vk::Device::allocateMemory: ErrorOutOfDeviceMemory');
      process.exit(Number(env.FAKE_SD_EXIT_CODE ?? 1));
    }
    progressBar(step, steps, speedText(stepMs / 1000));
    // step_callback: the preview (here a projection-sized PNG, 1/8 of the image) rewritten in
    // place every --preview-interval steps, without a rename, as write_image_to_file does.
    const previewMethod = options['--preview'] ?? 'none';
    if (previewMethod !== 'none' && step % Number(options['--preview-interval'] ?? 1) === 0) {
      writeFileSync(resolve(options['--preview-path'] ?? 'preview.png'), renderPng(Math.max(1, width >> 3), Math.max(1, height >> 3), seed + step));
    }
    if (hang === 'step' && step === hangAt) {
      hangForever();
      return;
    }
  }
  log('INFO', 'stable-diffusion.cpp', 3150, `sampling completed, taking ${((steps * stepMs) / 1000).toFixed(2)}s`);
  log('INFO', 'stable-diffusion.cpp', 3171, 'decoding 1 latents');
  if (hang === 'decode') {
    hangForever();
    return;
  }
  log('INFO', 'stable-diffusion.cpp', 3182, 'latent 1 decoded, taking 0.01s');
  log('INFO', 'stable-diffusion.cpp', 3230, 'generate_image completed in 0.05s');
  if (!env.FAKE_SD_SKIP_OUTPUT) {
    writeFileSync(output, renderPng(width, height, seed));
    log('INFO', 'main.cpp', 830, `save result PNG image to '${output}' (success)`);
  }
  process.exit(0);
}

main().catch((error) => fail([String(error && error.stack ? error.stack : error)]));
