#!/usr/bin/env node
/**
 * A stand-in for llama.cpp's `llama-server`, started the way the engine starts the real one:
 *   llama-server -m <gguf> --host 127.0.0.1 --port <port> -c <ctx> --jinja [extra args]
 * Mimics llama.cpp's tools/server (server.cpp / server-http.cpp, releases b5000–b6900): like the
 * real server it rejects arguments it does not know, listens before the model is loaded and
 * answers /health (and the chat routes) with 503 "Loading model" meanwhile — but /models,
 * /v1/models and /api/tags with 200, as middleware_server_state lets them through while loading
 * ("allow the models endpoint to be accessed during loading"), so a model list is no readiness sign — fails to load a model file
 * that does not exist with llama.cpp's own log lines and exit code 1, serves /v1/models and
 * /v1/chat/completions (streaming and not) through the OpenAI fake, and exits on SIGTERM.
 *
 * Test-only flags (the real server has none of these):
 *   --fake-state-dir <dir>  appends one JSON line per event to <dir>/events.jsonl (start, loaded,
 *                           request, disconnect, exit) and reads <dir>/script.json before each chat
 *                           request: a ChatScript plus {crashAfterTokens, once}
 *   --fake-load-ms <ms>     how long loading takes (default 300)
 * It also spawns a child process that ignores SIGTERM, so tests can see the whole group go.
 *
 * Run it with a Node that strips TypeScript types (it imports the .ts fake): the tests start it
 * through a small shell launcher that names the project's Node.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename, join } from 'node:path';
import { OpenAiChatFake } from './openai-chat-server.ts';

const VALUE_FLAGS = new Map([
  ['-m', 'model'],
  ['--model', 'model'],
  ['--host', 'host'],
  ['--port', 'port'],
  ['-c', 'ctx'],
  ['--ctx-size', 'ctx'],
  ['--mmproj', 'mmproj'],
  ['-ngl', 'gpuLayers'],
  ['--n-gpu-layers', 'gpuLayers'],
  ['--alias', 'alias'],
  ['--fake-state-dir', 'stateDir'],
  ['--fake-load-ms', 'loadMs'],
]);
const SWITCHES = new Set(['--jinja', '--no-jinja', '--no-webui', '--no-mmap', '--mlock']);

const options = { host: '127.0.0.1', port: '8080', ctx: '4096', loadMs: '300' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  const name = VALUE_FLAGS.get(arg);
  if (name !== undefined && i + 1 < argv.length) {
    options[name] = argv[++i];
  } else if (!SWITCHES.has(arg)) {
    process.stderr.write(`error: invalid argument: ${arg}\n`);
    process.exit(1);
  }
}

const eventsFile = options.stateDir === undefined ? undefined : join(options.stateDir, 'events.jsonl');
const scriptFile = options.stateDir === undefined ? undefined : join(options.stateDir, 'script.json');
function record(event) {
  if (eventsFile !== undefined) appendFileSync(eventsFile, `${JSON.stringify({ ...event, pid: process.pid, model: options.model })}\n`);
}

const log = (line) => process.stderr.write(`${line}\n`);
log('build: 0 (fake) with node for fake-llama-server');
log(`system info: n_threads = 4, n_threads_batch = 4, total_threads = 4`);

// A helper process in our group that ignores SIGTERM: only a group SIGKILL takes it down.
const helper = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1 << 30);"], { stdio: 'ignore' });

const fake = new OpenAiChatFake({ model: options.alias ?? (options.model === undefined ? 'model' : basename(options.model)) });
let loaded = false;
let crashAfterTokens;
fake.on('request', (request) => record({ event: 'request', path: request.path, body: request.body }));
fake.on('disconnect', () => record({ event: 'disconnect' }));
fake.on('token', (count) => {
  if (crashAfterTokens !== undefined && count >= crashAfterTokens) {
    log('/fake/ggml/src/ggml-backend.cpp:1234: GGML_ASSERT(buf != NULL && "tensor buffer not set") failed');
    record({ event: 'exit', reason: 'crash' });
    process.exit(134);
  }
});

const MODEL_LISTS = new Set(['/models', '/v1/models', '/api/tags']);
const loadingError = JSON.stringify({ error: { code: 503, message: 'Loading model', type: 'unavailable_error' } });
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://fake').pathname;
  if (!loaded && !MODEL_LISTS.has(path)) {
    res.writeHead(503, { 'content-type': 'application/json; charset=utf-8' });
    res.end(loadingError);
    return;
  }
  if (path === '/health' || path === '/v1/health') {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end('{"status":"ok"}');
    return;
  }
  if (path.endsWith('/chat/completions')) {
    const script = readScript();
    crashAfterTokens = script.crashAfterTokens;
    fake.script = script;
  }
  fake.handle(req, res).then((handled) => {
    if (!handled) {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: { code: 404, message: 'File Not Found', type: 'not_found_error' } }));
    }
  });
});

function readScript() {
  if (scriptFile === undefined || !existsSync(scriptFile)) return {};
  const script = JSON.parse(readFileSync(scriptFile, 'utf8'));
  if (script.once === true) rmSync(scriptFile, { force: true });
  return script;
}

server.on('error', (error) => {
  log(`main: couldn't bind HTTP server socket, hostname: ${options.host}, port: ${options.port}: ${error.message}`);
  process.exit(1);
});

// The free-port race, once: `port-taken-once` in the state dir makes this start fail to bind as
// if another program had taken the port between the worker choosing it and llama-server binding it.
const takenOnce = options.stateDir === undefined ? undefined : join(options.stateDir, 'port-taken-once');
if (takenOnce !== undefined && existsSync(takenOnce)) {
  rmSync(takenOnce, { force: true });
  record({ event: 'port-taken', port: Number(options.port) });
  server.emit('error', Object.assign(new Error(`listen EADDRINUSE: address already in use ${options.host}:${options.port}`), { code: 'EADDRINUSE' }));
} else server.listen(Number(options.port), options.host, () => {
  record({ event: 'start', port: Number(options.port), ctx: Number(options.ctx), childPid: helper.pid, args: argv });
  log(`main: HTTP server is listening, hostname: ${options.host}, port: ${options.port}, http threads: 3`);
  log('main: loading model');
  log(`srv    load_model: loading model '${options.model}'`);
  setTimeout(load, Number(options.loadMs));
});

function load() {
  const model = options.model;
  if (model === undefined || !existsSync(model)) {
    log(`gguf_init_from_file: failed to open GGUF file '${model}' (No such file or directory)`);
    log(`llama_model_load: error loading model: llama_model_loader: failed to load model from ${model}`);
    log('llama_model_load_from_file_impl: failed to load model');
    log(`common_init_from_params: failed to load model '${model}'`);
    log(`srv    load_model: failed to load model, '${model}'`);
    log('srv   operator(): operator(): cleaning up before exit...');
    log('main: exiting due to model loading failure');
    record({ event: 'exit', reason: 'load failure' });
    process.exit(1);
  }
  loaded = true;
  record({ event: 'loaded', ctx: Number(options.ctx) });
  log(`main: model loaded`);
  log(`main: server is listening on http://${options.host}:${options.port} - starting the main loop`);
  log('srv  update_slots: all slots are idle');
}

process.on('SIGTERM', () => {
  log('srv   operator(): operator(): cleaning up before exit...');
  record({ event: 'exit', reason: 'SIGTERM' });
  process.exit(0);
});
