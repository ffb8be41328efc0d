// Issue 9: the worker trusts no studio blindly. Input image URLs name hosts on the worker's own
// network as easily as public ones, and the fetched bytes go back to the studio in the result; so
// every hop is judged on the address it really connects to.
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { test, type TestContext } from 'node:test';
import sharp from 'sharp';
import { parseConfigText } from '../../src/config/index.ts';
import { EngineFailure } from '../../src/engines/engine.ts';
import { fetchImage } from '../../src/engines/shared/input-images.ts';
import { lookup as dnsLookup } from 'node:dns';
import { AddressRefused, checkedLookup, fetchPublic, forbiddenAddressClass, getWithLookup, inputUrlPolicy, inputUrlPolicyFor, type Resolver } from '../../src/platform/url-policy.ts';
import { LoopbackHttp } from '../helpers/loopback-http.ts';

const PNG = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#f00' } }).png().toBuffer();

/** An image server on loopback that also counts every request it gets. */
async function imageServer(t: TestContext, routes: Record<string, { status?: number; location?: string }> = {}) {
  const hits: string[] = [];
  const server = new LoopbackHttp((req, res) => {
    hits.push(req.url ?? '');
    const route = routes[req.url ?? ''];
    if (route?.location) return void res.writeHead(route.status ?? 302, { location: route.location }).end();
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length }).end(PNG);
  });
  const url = await server.listen();
  t.after(() => server.close());
  return { url, port: Number(new URL(url).port), hits };
}

/** A bare TCP listener on loopback that counts connections: proof that nothing even connected. */
async function connectionCounter(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const server: TcpServer = createTcpServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, connections: () => count };
}

async function refusal(promise: Promise<unknown>): Promise<EngineFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof EngineFailure, `expected an EngineFailure, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the fetch to be refused');
}

const signal = () => AbortSignal.timeout(10_000);

test('address classes: loopback, private, link-local, unspecified, CGNAT and IPv4-mapped/NAT64 forms are not public', () => {
  const cases: Array<[string, string | undefined]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['100.127.255.254', 'shared (CGNAT)'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    // Public addresses, including neighbours of the ranges above.
    ['8.8.8.8', undefined],
    ['172.32.0.1', undefined],
    ['100.128.0.1', undefined],
    ['169.255.0.1', undefined],
    ['2606:4700:4700::1111', undefined],
    ['::ffff:8.8.8.8', undefined],
    ['64:ff9b::808:808', undefined],
  ];
  for (const [address, expected] of cases) assert.equal(forbiddenAddressClass(address), expected, address);
});

test('an input image from a loopback server is refused as bad_input naming the address, and no request reaches it', async (t) => {
  const server = await imageServer(t);
  const failure = await refusal(fetchImage(`${server.url}/secret.png?sig=abc`, { what: 'initImageUrl', signal: signal() }));
  assert.equal(failure.code, 'bad_input');
  assert.equal(failure.retryable, false);
  assert.equal(
    failure.message,
    `initImageUrl ${server.url}/secret.png is refused: 127.0.0.1 is a loopback address; this worker fetches input images from public addresses only (its operator can allow the origin ${server.url} in allowed_input_origins)`,
  );
  assert.deepEqual(server.hits, []);
  for (const url of [`http://[::1]:${server.port}/x.png`, `https://[::ffff:127.0.0.1]:${server.port}/x.png`, 'https://169.254.169.254/latest/meta-data', 'https://10.0.0.8/x.png', 'https://0.0.0.0/x.png', 'https://2130706433/x.png', 'https://0x7f.1/x.png']) {
    const refused = await refusal(fetchImage(url, { what: 'maskUrl', signal: signal() }));
    assert.equal(refused.code, 'bad_input', url);
    assert.match(refused.message, /is refused: .* is a (loopback|link-local|private|unspecified) address/, url);
  }
});

test('a host NAME that resolves to loopback is refused on its resolved address, before any connection', async (t) => {
  const counter = await connectionCounter(t);
  // https, so the scheme is fine: only the address DNS gives for "localhost" stands in the way.
  const failure = await refusal(fetchImage(`https://localhost:${counter.port}/x.png`, { what: 'refImageUrl', signal: signal() }));
  assert.equal(failure.code, 'bad_input');
  assert.equal(failure.retryable, false);
  assert.match(failure.message, /^refImageUrl https:\/\/localhost:\d+\/x\.png is refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address; /);
  assert.equal(counter.connections(), 0);
});

test('an origin on the allow-list is fetched (plain http and loopback included)', async (t) => {
  const server = await imageServer(t);
  const image = await fetchImage(`${server.url}/ok.png`, { what: 'initImageUrl', signal: signal(), policy: inputUrlPolicy([`${server.url}/any/path`]) });
  assert.equal(image.format, 'png');
  assert.deepEqual(server.hits, ['/ok.png']);
});

test('a redirect from an allowed origin to a loopback one is refused on that hop', async (t) => {
  const target = await imageServer(t);
  const counter = await connectionCounter(t);
  const allowed = await imageServer(t, {
    '/to-ip': { location: `${target.url}/secret.png` },
    '/to-name': { location: `https://localhost:${counter.port}/secret.png` },
    '/to-metadata': { status: 307, location: 'http://169.254.169.254/latest/meta-data' },
  });
  const policy = inputUrlPolicy([allowed.url]);
  for (const [path, reason] of [
    ['/to-ip', /127\.0\.0\.1 is a loopback address/],
    ['/to-name', /localhost resolves to (127\.0\.0\.1|::1), a loopback address/],
    ['/to-metadata', /169\.254\.169\.254 is a link-local address/],
  ] as const) {
    const failure = await refusal(fetchImage(`${allowed.url}${path}`, { what: 'initImageUrl', signal: signal(), policy }));
    assert.equal(failure.code, 'bad_input', path);
    assert.equal(failure.retryable, false, path);
    assert.match(failure.message, reason, path);
  }
  assert.deepEqual(allowed.hits, ['/to-ip', '/to-name', '/to-metadata']);
  assert.deepEqual(target.hits, [], 'the loopback target was never asked');
  assert.equal(counter.connections(), 0);
});

test('DNS rebinding: the connection goes to the one address that was checked, never to a second answer', async (t) => {
  const counter = await connectionCounter(t);
  let questions = 0;
  // First answer public (TEST-NET-1, unreachable here), any later answer loopback: a resolver that
  // checked first and connected on a second lookup would reach the loopback listener.
  const rebinding: Resolver = (_host, _options, callback) => {
    questions++;
    callback(null, [{ address: questions === 1 ? '192.0.2.1' : '127.0.0.1', family: 4 }]);
  };
  await assert.rejects(fetchPublic(new URL(`http://rebind.test:${counter.port}/x.png`), { signal: AbortSignal.timeout(1500), resolve: rebinding }));
  assert.equal(questions, 1, 'one DNS question per connection');
  assert.equal(counter.connections(), 0);
});

test('a name with any non-public address among its answers is refused as a whole', async () => {
  const mixed: Resolver = (_host, _options, callback) =>
    callback(null, [
      { address: '93.184.216.34', family: 4 },
      { address: '::ffff:192.168.0.10', family: 6 },
    ]);
  const answer = await new Promise<unknown>((resolve) => checkedLookup(mixed)('mixed.test', { all: true }, (error) => resolve(error)));
  assert.ok(answer instanceof AddressRefused);
  assert.equal(answer.addressClass, 'private');
  assert.equal(answer.message, 'mixed.test resolves to ::ffff:192.168.0.10, a private address');
});

test('the worker trusts its studio, its engine servers and allowed_input_origins; nothing else', () => {
  const policy = inputUrlPolicyFor({
    apiBaseUrl: 'ws://127.0.0.1:4780/',
    allowedInputOrigins: ['http://192.168.1.20:8080/images/'],
    engines: {
      synthetic: { enabled: true },
      comfyui: { url: 'http://127.0.0.1:8188' },
      openai: { baseUrl: 'http://10.0.0.7:8080/v1' },
      a1111: { url: 'http://127.0.0.1:7860', enabled: false },
    },
  });
  assert.deepEqual([...policy.trustedOrigins].sort(), ['http://10.0.0.7:8080', 'http://127.0.0.1:4780', 'http://127.0.0.1:8188', 'http://192.168.1.20:8080']);
});

test('the pinned GET answers a Web Response: status, headers, streamed body, no body for 204, redirects not followed, abortable', async (t) => {
  const big = Buffer.alloc(256 * 1024, 7);
  const server = new LoopbackHttp((req, res) => {
    if (req.url === '/big') return void res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-twice': ['a', 'b'] }).end(big);
    if (req.url === '/empty') return void res.writeHead(204).end();
    if (req.url === '/moved') return void res.writeHead(302, { location: '/big' }).end('moved');
    if (req.url === '/hang') return void res.writeHead(200).write('x');
    res.writeHead(404).end();
  });
  const base = await server.listen();
  t.after(() => server.close());
  // A plain lookup stands in for the checked one, which (rightly) refuses this loopback server.
  const plain: Parameters<typeof getWithLookup>[2] = (host, options, callback) => dnsLookup(host, options, callback as never);

  const ok = await getWithLookup(new URL(`${base}/big`), { headers: { 'x-asked': '1' } }, plain);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('content-type'), 'application/octet-stream');
  assert.equal(ok.headers.get('x-twice'), 'a, b');
  assert.deepEqual(Buffer.from(await ok.arrayBuffer()), big);
  const empty = await getWithLookup(new URL(`${base}/empty`), {}, plain);
  assert.equal(empty.status, 204);
  assert.equal(empty.body, null);
  const moved = await getWithLookup(new URL(`${base}/moved`), {}, plain);
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.get('location'), '/big');
  await moved.body?.cancel();
  const controller = new AbortController();
  const hanging = await getWithLookup(new URL(`${base}/hang`), { signal: controller.signal }, plain);
  const reading = hanging.arrayBuffer();
  controller.abort();
  await assert.rejects(reading);
});

test('config: allow_loopback_http is off unless set; allowed_input_origins takes http(s) URLs and names a bad entry', () => {
  const defaults = parseConfigText('');
  assert.equal(defaults.allowLoopbackHttp, false);
  assert.deepEqual(defaults.allowedInputOrigins, []);
  const set = parseConfigText('allow_loopback_http = true\nallowed_input_origins = ["http://192.168.1.20:8080"]\n');
  assert.equal(set.allowLoopbackHttp, true);
  assert.deepEqual(set.allowedInputOrigins, ['http://192.168.1.20:8080']);
  assert.throws(() => parseConfigText('allowed_input_origins = ["file:///etc"]\n'), /allowed_input_origins\.0: an http or https origin such as "http:\/\/192\.168\.1\.20:8080"/);
});
