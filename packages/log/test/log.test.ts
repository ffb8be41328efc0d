import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogRoot, levelFor, parseLogFilter } from '../src/index.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

describe('STUDIO_WORKER_LOG filter', () => {
  it('reads a default and per-module levels', () => {
    const { filter, problems } = parseLogFilter('info,session=debug,engine.sdcpp=warn');
    assert.deepEqual(problems, []);
    assert.equal(levelFor(filter, 'session'), 'debug');
    assert.equal(levelFor(filter, 'session.reconnect'), 'debug');
    assert.equal(levelFor(filter, 'engine.sdcpp'), 'warn');
    assert.equal(levelFor(filter, 'engine'), 'info');
  });
  it('reports unknown levels', () => {
    const { problems, filter } = parseLogFilter('loud,session=chatty');
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? '', /unknown level "loud"/);
    assert.equal(filter.defaultLevel, 'info');
  });
  it('applies module levels to child loggers', () => {
    const { lines, stream } = capture();
    const log = createLogRoot({ app: 't', spec: 'warn,session=debug', destination: stream });
    log.child('session').debug({ op: 'x' }, 'shown');
    log.child('engine').info({ op: 'y' }, 'hidden');
    log.child('engine').warn({ op: 'z' }, 'shown too');
    assert.deepEqual(lines.map((l) => l.msg), ['shown', 'shown too']);
    assert.equal(lines[0]?.module, 'session');
    assert.equal(lines[0]?.level, 'debug');
  });
  it('never writes a secret', () => {
    const { lines, stream } = capture();
    const log = createLogRoot({ app: 't', spec: 'info', destination: stream });
    log.child('m').info({ op: 'x', authToken: 'tok-SECRET1', config: { registration_secret: 'SECRET2', token: 'SECRET3', apiKey: 'SECRET4' }, api_key: 'SECRET5' }, 'hello');
    const text = JSON.stringify(lines);
    assert.ok(!/SECRET/.test(text), text);
    assert.match(text, /\[redacted\]/);
  });
});

describe('on a terminal', () => {
  it('every log event is one line (studio and worker destinations), fields included', () => {
    // `script` gives the program a pseudo-terminal as stdout, as a user's terminal does.
    const program = `${process.execPath} ${join(import.meta.dirname, 'fixtures', 'tty-logger.ts')}`;
    const run = spawnSync('script', ['-qec', program, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_PRETTY_LOGS: '', TERM: 'dumb' } });
    assert.equal(run.status, 0, run.stderr);
    // Colours stripped: the test reads the text.
    const lines = run.stdout
      .replace(/\x1B\[[0-9;]*m/g, '')
      .split(/\r?\n/)
      .filter((line) => line.trim() !== '');
    assert.equal(lines.length, 3, `one line per event:\n${run.stdout}`);
    assert.match(lines[0] ?? '', /\[http\] first event .*sd-cli not found/);
    assert.match(lines[1] ?? '', /\[engine\] second event .*"engine":"sd-cpp"/);
    assert.match(lines[2] ?? '', /third event .*"taskKinds":\["image","llm"\]/);
  });
});
