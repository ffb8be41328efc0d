import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import { defaultConfig } from '../../src/config/index.ts';
import { applyConfigPatch, editableConfig } from '../../src/config/editable.ts';
import { JobBoard, type JobEnded } from '../../src/observe/job-board.ts';
import { LogRing } from '../../src/observe/log-ring.ts';
import { isUntaggedDebugLine, LogTap, type LogRecord } from '../../src/observe/log-tap.ts';
import { ModelDownloads } from '../../src/models/download-board.ts';
import { chooseLocalApiPort, isLoopbackHostHeader, isLoopbackOrigin, StaticUi } from '../../src/local-api/index.ts';
import { imageTask, parseSize, readChatAnswer } from '../../src/local-api/openai-shapes.ts';
import { ModelFileFailure } from '../../src/models/index.ts';

describe('loopback guards', () => {
  it('Host: localhost, 127.0.0.1 and [::1] with any port; nothing else', () => {
    for (const host of ['localhost', 'LOCALHOST:4787', '127.0.0.1', '127.0.0.1:1', '[::1]', '[::1]:4787']) assert.ok(isLoopbackHostHeader(host), host);
    for (const host of [undefined, '', 'evil.example', 'localhost.evil.example', '127.0.0.2', '127.0.0.1.evil.example', '[::2]', '0.0.0.0', 'localhost:', 'localhost:abc']) {
      assert.ok(!isLoopbackHostHeader(host), String(host));
    }
  });

  it('Origin: http(s) to a loopback host; null, other schemes, paths and credentials are refused', () => {
    for (const origin of ['http://localhost', 'https://localhost:8443', 'http://127.0.0.1:4787', 'http://[::1]:3000']) assert.ok(isLoopbackOrigin(origin), origin);
    for (const origin of ['null', 'http://evil.example', 'file://localhost', 'ws://localhost', 'http://user:pw@localhost', 'http://localhost/path', 'not a url']) {
      assert.ok(!isLoopbackOrigin(origin), origin);
    }
  });

  it('the port variable wins when valid; an invalid one is reported and ignored', () => {
    const warnings: string[] = [];
    const warn = (message: string) => void warnings.push(message);
    assert.equal(chooseLocalApiPort(4787, {}, warn), 4787);
    assert.equal(chooseLocalApiPort(4787, { STUDIO_WORKER_LOCAL_API_PORT: ' 5000 ' }, warn), 5000);
    assert.equal(chooseLocalApiPort(4787, { STUDIO_WORKER_LOCAL_API_PORT: '0' }, warn), 0);
    assert.deepEqual(warnings, []);
    for (const bad of ['70000', '-1', '12.5', 'abc']) assert.equal(chooseLocalApiPort(4787, { STUDIO_WORKER_LOCAL_API_PORT: bad }, warn), 4787);
    assert.equal(warnings.length, 4);
    assert.match(warnings[0] ?? '', /STUDIO_WORKER_LOCAL_API_PORT="70000" is not a port/);
  });
});

describe('static UI', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ui-'));
    await mkdir(join(dir, 'ui', 'assets'), { recursive: true });
    await writeFile(join(dir, 'ui', 'index.html'), '<!doctype html><title>UI</title>');
    await writeFile(join(dir, 'ui', 'assets', 'app.js'), 'console.log(1)');
    await writeFile(join(dir, 'secret.txt'), 'outside the UI dir');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('serves index.html at / and files under /ui/, and nothing outside the UI dir', async () => {
    const ui = new StaticUi(join(dir, 'ui'));
    assert.equal((await ui.serve('/'))?.body.toString(), '<!doctype html><title>UI</title>');
    const script = await ui.serve('/ui/assets/app.js');
    assert.equal(script?.contentType, 'text/javascript; charset=utf-8');
    for (const path of ['/ui/../secret.txt', '/ui/%2e%2e/secret.txt', '/ui/assets/../../secret.txt', '/ui/', '/ui/assets', '/ui/%00', '/ui/missing.js', '/ui/..%5csecret.txt']) {
      assert.equal(await ui.serve(path), null, path);
    }
    assert.ok(ui.handles('GET', '/') && ui.handles('GET', '/ui/x') && !ui.handles('POST', '/') && !ui.handles('GET', '/jobs'));
  });

  it('serves the web kit under /kit/ from its own dir, and nothing outside it', async () => {
    await mkdir(join(dir, 'kit'), { recursive: true });
    await writeFile(join(dir, 'kit', 'dom.js'), 'export const h = 1;');
    await writeFile(join(dir, 'kit', 'base.css'), ':root {}');
    const ui = new StaticUi(join(dir, 'ui'), join(dir, 'kit'));
    assert.ok(ui.handles('GET', '/kit/dom.js') && ui.handles('HEAD', '/kit/base.css') && !ui.handles('POST', '/kit/dom.js'));
    assert.equal((await ui.serve('/kit/dom.js'))?.body.toString(), 'export const h = 1;');
    assert.equal((await ui.serve('/kit/base.css'))?.contentType, 'text/css; charset=utf-8');
    for (const path of ['/kit/../secret.txt', '/kit/%2e%2e/secret.txt', '/kit/%2e%2e/ui/index.html', '/kit/', '/kit/missing.js', '/kit/%00', '/kit/..%5csecret.txt']) {
      assert.equal(await ui.serve(path), null, path);
    }
    assert.equal(await ui.serve('/ui/dom.js'), null, 'kit files are not UI files');
  });

  it('the default kit is the one the UI imports: /kit/dom.js exports h', async () => {
    const served = await new StaticUi(join(dir, 'ui')).serve('/kit/dom.js');
    assert.match(served?.body.toString() ?? '', /export function h\(/);
  });

  it('without an installed UI, / says so', async () => {
    const page = await new StaticUi(join(dir, 'none')).serve('/');
    assert.match(page?.body.toString() ?? '', /web UI is not installed/);
    assert.equal(await new StaticUi(join(dir, 'none')).serve('/ui/app.js'), null);
  });
});

describe('editable config', () => {
  it('lists the editable settings, never a credential, and validates a patch naming the field', () => {
    const config = { ...defaultConfig(), authToken: 'tok-SECRET', localApiToken: 'SECRET', workerId: 'w-1' };
    const editable = editableConfig(config);
    assert.ok(!JSON.stringify(editable).includes('SECRET'));
    assert.equal('workerId' in editable, false);
    assert.equal(editable.label, null);

    const wrongType = applyConfigPatch(config, { prefetch: 'yes' });
    assert.deepEqual(wrongType, { ok: false, message: 'prefetch must be true or false' });
    const badUrl = applyConfigPatch(config, { autoUpdateFeed: 'ftp://x' });
    assert.ok(!badUrl.ok && /autoUpdateFeed must be an http or https URL/.test(badUrl.message));
    const credential = applyConfigPatch(config, { localApiToken: 'x' });
    assert.ok(!credential.ok && /"localApiToken" cannot be changed here/.test(credential.message));
    const fine = applyConfigPatch(config, { apiBaseUrl: 'https://studio.example/', failureCooldownSecs: 0, label: 'pc' });
    assert.ok(fine.ok);
    assert.deepEqual(fine.changed.sort(), ['apiBaseUrl', 'failureCooldownSecs', 'label']);
    assert.deepEqual(fine.restartRequired, ['apiBaseUrl']);
    assert.equal(fine.next.authToken, 'tok-SECRET', 'other fields are kept');
    const same = applyConfigPatch(config, { vramThresholdGb: config.vramThresholdGb });
    assert.ok(same.ok && same.changed.length === 0);
  });
});

describe('log ring', () => {
  it('keeps the newest lines at info and up, numbered, and pages by sequence number', () => {
    const ring = new LogRing(3);
    ring.push({ level: 'debug', msg: 'hidden' });
    for (let n = 1; n <= 5; n++) ring.push({ level: 'info', msg: `line ${n}`, module: 'm', time: '2026-01-01T00:00:00.000Z', ...(n === 5 ? { jobId: 'j-5' } : {}) });
    assert.equal(ring.seq, 5);
    assert.deepEqual(ring.after(undefined).entries.map((e) => e.msg), ['line 3', 'line 4', 'line 5']);
    assert.equal(ring.after(undefined).entries[2]?.jobId, 'j-5');
    assert.deepEqual(ring.after(3), { entries: [ring.after(undefined).entries[1], ring.after(undefined).entries[2]], seq: 5 });
    assert.deepEqual(ring.after(5).entries, []);
    assert.equal(ring.after(5).seq, 5);
    assert.equal(ring.after(99).entries.length, 3, 'after beyond the newest: the whole ring');
    assert.deepEqual(ring.after(0, 1), { entries: [ring.after(undefined).entries[0]], seq: 3 });
  });
});

describe('log tap', () => {
  it('parses each line once for its listeners, skipping debug lines that name no job', () => {
    const tap = new LogTap(isUntaggedDebugLine);
    const seen: LogRecord[] = [];
    tap.subscribe((record) => seen.push(record));
    tap.write('{"level":"debug","msg":"skipped"}\n');
    tap.write('{"level":"debug","jobId":"j-1","msg":"job debug"}\n');
    tap.write('{"level":"info","msg":"says \\"level\\":\\"debug\\""}\n');
    tap.write('not json\n');
    tap.write('{"msg":"no level"}\n');
    assert.deepEqual(seen.map((record) => record.msg), ['job debug', 'says "level":"debug"']);
  });
});

describe('job board', () => {
  it('keeps a bounded log per job with a dropped count, a bounded history, and tells when jobs end', async () => {
    const ended: JobEnded[] = [];
    const board = new JobBoard({ recentLimit: 2, logLinesPerJob: 3, onEnded: (e) => ended.push(e) });
    board.begin({ jobId: 'a', source: 'studio', kind: 'llm', model: 'm', engine: 'synthetic', prompt: 'p', attempt: 1, waiting: true });
    assert.equal(board.list().running[0]?.status, 'waiting');
    board.markRunning('a');
    board.progress('a', { phase: 'generating', step: 2, total: 4, fraction: 0.5 });
    assert.deepEqual(board.get('a')?.progress, { phase: 'generating', step: 2, total: 4, fraction: 0.5 });
    for (let n = 1; n <= 5; n++) board.onLogRecord({ level: 'info', msg: `l${n}`, jobId: 'a', module: 'job', time: 't' });
    board.onLogRecord({ level: 'info', msg: 'other', jobId: 'zzz' });
    assert.deepEqual(board.log('a'), { lines: ['l3', 'l4', 'l5'].map((msg) => ({ ts: 't', level: 'info', module: 'job', msg })), dropped: 2 });
    assert.ok(board.usesModel('m'));
    board.end('a', { status: 'failed', reason: 'engine_error: boom' });
    assert.equal(board.usesModel('m'), false);
    assert.deepEqual(ended.map((e) => [e.source, e.kind, e.status, e.job.jobId, e.job.reason]), [['studio', 'llm', 'failed', 'a', 'engine_error: boom']]);
    board.onLogRecord({ level: 'info', msg: 'delivered', jobId: 'a', module: 'delivery', time: 't' });
    assert.equal(board.log('a')?.lines.at(-1)?.msg, 'delivered', 'lines after the end still reach the job');
    const seen: string[] = [];
    const unsubscribe = board.onJobEnded((e) => seen.push(`${e.job.jobId}:${e.status}`));
    for (const id of ['b', 'c']) {
      board.begin({ jobId: id, source: 'local', kind: 'image', model: 'm', engine: 'synthetic', prompt: id });
      board.end(id, { status: 'done' });
    }
    unsubscribe();
    assert.deepEqual(seen, ['b:done', 'c:done']);
    assert.deepEqual(board.list().recent.map((job) => job.jobId), ['c', 'b'], 'the oldest fell out of the ring');
    assert.equal(board.get('a'), undefined);
  });

  it('makes a PNG thumbnail of an image result', async () => {
    const board = new JobBoard();
    const image = await sharp({ create: { width: 800, height: 1200, channels: 3, background: '#336699' } }).webp().toBuffer();
    board.begin({ jobId: 'img', source: 'local', kind: 'image', model: 'm', engine: 'synthetic', prompt: 'p' });
    board.end('img', { status: 'done', image: { bytes: image, ext: 'webp' } });
    const { pollUntil } = await import('../helpers/wait.ts');
    const thumbnail = await pollUntil(() => board.thumbnail('img'), 'the thumbnail');
    const meta = await sharp(thumbnail).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 256, 384]);
    assert.equal(board.get('img')?.hasThumbnail, true);
  });
});

describe('model downloads', () => {
  it('tracks progress per model, forgets it on success, keeps a failure, and refuses a second start', async () => {
    let finish!: (value: unknown) => void;
    let fail!: (error: Error) => void;
    let report!: (update: { phase: 'downloading'; step: number; total?: number; message: string }) => void;
    const downloads = new ModelDownloads({
      log: silentLogger,
      ensure: (_id, _files, ctx) =>
        new Promise((resolve, reject) => {
          report = ctx.progress;
          finish = () => resolve([]);
          fail = reject;
        }),
    });
    const files = [
      { role: 'model' as const, url: 'https://x/a.bin', filename: 'a.bin', approxBytes: 100 },
      { role: 'vae' as const, url: 'https://x/a.bin.vae', filename: 'a.bin.vae', approxBytes: 50 },
    ];
    assert.equal(downloads.start('m', files), 'started');
    assert.equal(downloads.start('m', files), 'already_downloading');
    report({ phase: 'downloading', step: 40, total: 100, message: 'a.bin 40 B/100 B' });
    report({ phase: 'downloading', step: 10, message: 'a.bin.vae 10 B' });
    const state = downloads.state('m');
    assert.equal(state?.state, 'downloading');
    assert.equal(state?.bytesDone, 50, 'the longest matching file name wins (a.bin.vae is not a.bin)');
    assert.equal(state?.bytesTotal, 150);
    finish([]);
    const { pollUntil } = await import('../helpers/wait.ts');
    await pollUntil(() => (downloads.isDownloading('m') ? undefined : true), 'the download to settle');
    assert.equal(downloads.state('m'), undefined);

    assert.equal(downloads.start('m', files), 'started');
    fail(new ModelFileFailure('http', 'server said 404', { retryable: false, httpStatus: 404 }));
    const failed = await pollUntil(() => (downloads.state('m')?.state === 'failed' ? downloads.state('m') : undefined), 'the failure');
    assert.equal(failed?.error, 'server said 404');
  });
});

describe('OpenAI request shapes', () => {
  it('reads sizes, turns requests into tasks, and reads engine answers', () => {
    assert.deepEqual(parseSize('1024x768'), { width: 1024, height: 768 });
    assert.deepEqual(parseSize('auto'), {});
    assert.deepEqual(parseSize(undefined), {});
    assert.throws(() => parseSize('8x8'), /size "8x8"/);
    const task = imageTask({ prompt: 'p', negative_prompt: 'n', seed: 10, steps: 4, size: '64x32' }, 2);
    assert.deepEqual(task, { kind: 'image', prompt: 'p', negativePrompt: 'n', width: 64, height: 32, steps: 4, seed: 12, ext: 'png' });
    const answer = readChatAnswer({ choices: [{ message: { content: 'hello world', reasoning_content: 'hmm' }, finish_reason: 'length' }] }, 'one two three');
    assert.deepEqual(answer, { content: 'hello world', reasoning: 'hmm', finishReason: 'length', usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } });
    assert.throws(() => readChatAnswer({ nope: true }, ''), /no chat completion/);
  });
});
