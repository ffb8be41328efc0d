#!/usr/bin/env node
// A faithful fake of stable-diffusion.cpp's sd-server (examples/server at commit 97d29908, the pinned
// release master-669-2d40a8b: main.cpp, runtime.cpp, routes_sdapi.cpp, routes_openai.cpp; flags from
// sd-cpp-flags.json, extracted from that commit): the same context flags,
// the model loaded once at start (and only then listening), the progress bar on stdout during each
// generation, and the documented routes with their JSON shapes (examples/server/api.md):
//   GET  /v1/models                  {data:[{id:"sd-cpp-local",object:"model",owned_by:"local"}]}
//   GET  /sdapi/v1/options           {samples_format:"png", sd_model_checkpoint}
//   GET  /sdapi/v1/sd-models         [{title, model_name, filename, hash, sha256, config}]
//   GET  /sdapi/v1/samplers          [{name, aliases, options}]
//   POST /sdapi/v1/txt2img, img2img  {images:[base64 PNG], parameters:<request>, info:"<json>"}
//                                    400 {"error":"..."} / 500 {"error":"...","message"?}
//   POST /v1/images/generations      {created, output_format, data:[{b64_json}]}
// One generation at a time (the real one holds a mutex around generate_image).
// As the real one:
// - `<lora:name:w>` tags in a prompt are NOT parsed (server APIs disable prompt LoRA parsing); LoRAs
//   come in the sdapi body as `lora: [{path, multiplier}]`, `path` relative to --lora-model-dir
//   ("invalid lora path: …" 400 otherwise);
// - the OpenAI route reads only prompt/n/size/output_format; extra values (seed, negative_prompt,
//   sample_params.sample_steps …) come from `<sd_cpp_extra_args>{json}</sd_cpp_extra_args>` in the
//   prompt, which is cut out of it;
// - an unknown sampler_name on the sdapi route is ignored (the default sampler is used);
// - requests.log records what was applied (`applied`: prompt, negative_prompt, seed, steps, sampler, loras).
//
// Scripted through the environment (fixed for the process):
//   FAKE_SD_STATE_DIR       loads.log (one JSON line per model load) and requests.log go here
//   FAKE_SD_LOAD_MS         time spent loading (default 0)
//   FAKE_SD_HANG_LOAD       never finish loading
//   FAKE_SD_IGNORE_SIGTERM  ignore SIGTERM
//   FAKE_SD_PORT_TAKEN_ONCE a file: when it does not exist yet, create it and fail to listen as if
//                           another program had taken the port (EADDRINUSE) — the free-port race
// and through FAKE_SD_CONTROL, a JSON file read at every generation request:
//   { stepMs, crashAtStep, exitCode, hangAtStep, status, error }
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename, extname, join } from 'node:path';
import {
  contextErrors,
  decodableBytes,
  log,
  modelFiles,
  parseArgs,
  progressBar,
  renderPng,
  SAMPLE_METHODS,
  SERVER_ONLY,
  printHelp,
  simulateLoad,
  sleep,
  speedText,
  validateGeneration,
} from './sd-common.mjs';

const env = process.env;
const argv = process.argv.slice(2);
if (env.FAKE_SD_IGNORE_SIGTERM) process.on('SIGTERM', () => log('WARN', 'main.cpp', 1, 'ignoring SIGTERM'));

if (argv.includes('--help') || argv.includes('-h')) {
  printHelp('sd-server', SERVER_ONLY);
  process.exit(0);
}

const parsed = parseArgs(argv, SERVER_ONLY);
if (parsed.error) {
  process.stderr.write(`${parsed.error}\n`);
  process.stdout.write('usage: sd-server [options]\n');
  process.exit(1);
}
const options = parsed.options;
const invalid = validateGeneration(options);
if (invalid) {
  process.stderr.write(`${invalid}\n`);
  process.exit(1);
}
const contextProblem = contextErrors(options);
if (contextProblem) {
  for (const line of contextProblem) {
    if (line.startsWith('error:')) process.stderr.write(`${line}\n`);
    else log('ERROR', 'main.cpp', 285, line);
  }
  process.exit(1);
}

const stateDir = env.FAKE_SD_STATE_DIR;
const record = (file, entry) => {
  if (stateDir) appendFileSync(join(stateDir, file), `${JSON.stringify(entry)}\n`);
};
const modelPath = options['--diffusion-model'] ?? options['--model'];

function control() {
  const file = env.FAKE_SD_CONTROL;
  if (!file || !existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

function imageInfo(value) {
  if (typeof value !== 'string') return value;
  const bytes = Buffer.from(value.replace(/^data:[^,]*,/, ''), 'base64');
  return { base64Bytes: bytes.length, decodable: decodableBytes(bytes), head: bytes.subarray(0, 4).toString('hex') };
}

/** The request as the test sees it: images replaced by what they decode to. */
function summarise(body) {
  const out = { ...body };
  if (Array.isArray(out.init_images)) out.init_images = out.init_images.map(imageInfo);
  if (Array.isArray(out.extra_images)) out.extra_images = out.extra_images.map(imageInfo);
  if (out.mask !== undefined) out.mask = imageInfo(out.mask);
  return out;
}

let busy = Promise.resolve();
function exclusive(work) {
  const run = busy.then(work);
  busy = run.catch(() => undefined);
  return run;
}

/** routes_openai.cpp's extract_and_remove_sd_cpp_extra_args: the JSON inside the tag, cut out of the prompt. */
function extractExtraArgs(prompt) {
  const match = /<sd_cpp_extra_args>(.*?)<\/sd_cpp_extra_args>/.exec(prompt);
  if (match === null) return { prompt, extra: undefined };
  return { prompt: prompt.replace(/<sd_cpp_extra_args>(.*?)<\/sd_cpp_extra_args>/g, ''), extra: match[1] };
}

/** runtime.cpp's refresh_lora_cache + get_lora_full_path: files under --lora-model-dir by relative path. */
function loraPath(path) {
  const dir = options['--lora-model-dir'];
  if (!dir || path.includes('..')) return undefined;
  const full = join(dir, path);
  return existsSync(full) && /\.(safetensors|ckpt|pt|gguf)$/.test(path) ? full : undefined;
}

/** build_sdapi_img_gen_request's reading of the body; answers {error} or the values applied. */
function applyBody(body) {
  const applied = {
    prompt: body.prompt,
    negative_prompt: body.negative_prompt ?? '',
    seed: body.seed ?? -1,
    steps: body.steps ?? options['--steps'] ?? 20,
    sampler: SAMPLE_METHODS.includes(body.sampler_name) ? body.sampler_name : (options['--sampling-method'] ?? 'euler_a'),
    loras: [],
  };
  const { prompt, extra } = extractExtraArgs(String(body.prompt ?? ''));
  applied.prompt = prompt;
  if (extra !== undefined) {
    let json;
    try {
      json = JSON.parse(extra);
    } catch {
      return { error: 'invalid sd_cpp_extra_args' };
    }
    if (typeof json.seed === 'number') applied.seed = json.seed;
    if (typeof json.negative_prompt === 'string') applied.negative_prompt = json.negative_prompt;
    const sample = json.sample_params ?? {};
    if (Number.isInteger(sample.sample_steps)) applied.steps = sample.sample_steps;
    if (SAMPLE_METHODS.includes(sample.sample_method)) applied.sampler = sample.sample_method;
  }
  if (Array.isArray(body.lora)) {
    for (const item of body.lora) {
      if (typeof item !== 'object' || item === null) continue;
      if (typeof item.path !== 'string' || item.path === '') return { error: 'lora.path required' };
      const full = loraPath(item.path);
      if (full === undefined) return { error: `invalid lora path: ${item.path}` };
      applied.loras.push({ path: full, multiplier: item.multiplier ?? 1 });
    }
  }
  return { applied };
}

async function generate(body, img2img) {
  const script = control();
  if (typeof body.prompt !== 'string' || body.prompt === '') return { status: 400, json: { error: 'prompt required' } };
  const reading = applyBody(body);
  if (reading.error) return { status: 400, json: { error: reading.error } };
  const applied = reading.applied;
  record('applied.log', { pid: process.pid, applied });
  const width = body.width ?? 512;
  const height = body.height ?? 512;
  if (width <= 0 || height <= 0) return { status: 400, json: { error: 'width and height must be positive' } };
  // Like the real server, a sampler name it does not know is ignored (its default is kept).
  for (const image of [...(body.init_images ?? []), ...(body.extra_images ?? []), ...(body.mask === undefined ? [] : [body.mask])]) {
    if (typeof image !== 'string' || !decodableBytes(Buffer.from(image.replace(/^data:[^,]*,/, ''), 'base64'))) {
      return { status: 400, json: { error: 'invalid params' } };
    }
  }
  if (script.status) return { status: script.status, json: { error: script.error ?? 'server_error', message: 'scripted failure' } };
  const steps = applied.steps;
  const seed = applied.seed;
  const stepMs = script.stepMs ?? 2;
  log('INFO', 'stable-diffusion.cpp', 3093, `sampling using ${applied.sampler} method`);
  log('INFO', 'stable-diffusion.cpp', 3104, `generating image: 1/1 - seed ${seed}`);
  for (let step = 1; step <= steps; step++) {
    await sleep(stepMs);
    if (step === script.crashAtStep) {
      process.stderr.write('ggml_vulkan: Device memory allocation of size 2147483648 failed.\n');
      log('ERROR', 'ggml-vulkan.cpp', 1634, 'vk::Device::allocateMemory: ErrorOutOfDeviceMemory');
      process.exit(script.exitCode ?? 134);
    }
    progressBar(step, steps, speedText(stepMs / 1000));
    if (step === script.hangAtStep) await new Promise(() => undefined);
  }
  log('INFO', 'stable-diffusion.cpp', 3150, 'sampling completed, taking 0.05s');
  log('INFO', 'stable-diffusion.cpp', 3171, 'decoding 1 latents');
  log('INFO', 'stable-diffusion.cpp', 3230, 'generate_image completed in 0.05s');
  const png = renderPng(width, height, seed < 0 ? 1234 : seed);
  const info = { prompt: applied.prompt, seed, cfg_scale: body.cfg_scale, width, height, steps, sampler_name: applied.sampler, sd_model_name: basename(modelPath) };
  if (img2img) info.denoising_strength = body.denoising_strength;
  return { status: 200, json: { images: [png.toString('base64')], parameters: body, info: JSON.stringify(info) } };
}

function send(res, status, json) {
  const text = JSON.stringify(json);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const chunks = [];
  for await (const piece of req) chunks.push(piece);
  const raw = Buffer.concat(chunks).toString('utf8');
  if (req.method === 'GET' && url.pathname === '/v1/models') return send(res, 200, { data: [{ id: 'sd-cpp-local', object: 'model', owned_by: 'local' }] });
  if (req.method === 'GET' && url.pathname === '/sdapi/v1/options') return send(res, 200, { samples_format: 'png', sd_model_checkpoint: basename(modelPath, extname(modelPath)) });
  if (req.method === 'GET' && url.pathname === '/sdapi/v1/sd-models') {
    const stem = basename(modelPath, extname(modelPath));
    return send(res, 200, [{ title: stem, model_name: stem, filename: basename(modelPath), hash: '8888888888', sha256: '8'.repeat(64), config: null }]);
  }
  if (req.method === 'GET' && url.pathname === '/sdapi/v1/samplers') return send(res, 200, ['default', ...SAMPLE_METHODS].map((name) => ({ name, aliases: [name], options: {} })));
  const routes = { '/sdapi/v1/txt2img': false, '/sdapi/v1/img2img': true };
  if (req.method === 'POST' && (url.pathname in routes || url.pathname === '/v1/images/generations')) {
    if (raw === '') return send(res, 400, { error: 'empty body' });
    let body;
    try {
      body = JSON.parse(raw);
    } catch (error) {
      return send(res, 500, { error: 'server_error', message: String(error.message) });
    }
    record('requests.log', { pid: process.pid, route: url.pathname, body: summarise(body) });
    if (url.pathname === '/v1/images/generations') {
      const [w, h] = String(body.size ?? '512x512').split('x').map(Number);
      // Only prompt, n, size and output_format are read here; the rest comes from <sd_cpp_extra_args>.
      const answer = await exclusive(() => generate({ prompt: body.prompt, width: w, height: h }, false));
      if (answer.status !== 200) return send(res, answer.status, answer.json);
      return send(res, 200, { created: Math.floor(Date.now() / 1000), output_format: 'png', data: [{ b64_json: answer.json.images[0] }] });
    }
    const answer = await exclusive(() => generate(body, routes[url.pathname]));
    return send(res, answer.status, answer.json);
  }
  return send(res, 404, { error: 'not found' });
}

async function main() {
  if (env.FAKE_SD_HANG_LOAD) {
    log('INFO', 'stable-diffusion.cpp', 236, 'loading model');
    setInterval(() => undefined, 1 << 30);
    return;
  }
  await simulateLoad(modelFiles(options), Number(env.FAKE_SD_LOAD_MS ?? 0));
  record('loads.log', { pid: process.pid, model: modelPath, argv });
  const ip = options['--listen-ip'] ?? '127.0.0.1';
  const port = options['--listen-port'] ?? 1234;
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => send(res, 500, { error: 'server_error', message: String(error) }));
  });
  const takenOnce = env.FAKE_SD_PORT_TAKEN_ONCE;
  if (takenOnce && !existsSync(takenOnce)) {
    writeFileSync(takenOnce, String(port));
    log('ERROR', 'main.cpp', 1000, `failed to listen on ${ip}:${port}: listen EADDRINUSE: address already in use ${ip}:${port}`);
    process.exit(1);
  }
  server.on('error', (error) => {
    log('ERROR', 'main.cpp', 1000, `failed to listen on ${ip}:${port}: ${error.message}`);
    process.exit(1);
  });
  server.listen(port, ip, () => log('INFO', 'main.cpp', 990, `listening on: ${ip}:${port}`));
}

main().catch((error) => {
  log('ERROR', 'main.cpp', 1, String(error));
  process.exit(1);
});
