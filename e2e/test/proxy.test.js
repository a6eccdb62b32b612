// `mcpauth proxy` in front of a real third-party MCP server: the reference
// "everything" server (npm @modelcontextprotocol/server-everything,
// Streamable HTTP mode, pinned in package-lock.json), with `mcpauth serve`
// as the issuer and the TypeScript MCP SDK as a CIMD client that logs in,
// consents, lists and calls tools (a streaming one too), steps up for a tool
// the proxy's config guards, and ends its session.

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser } from '../lib/browser.js';
import { binaries, freePort, Proc, run, tempDir } from '../lib/procs.js';
import { recordingFetch, TestProvider } from '../lib/provider.js';
import { alicePassword, runCleanup, startMetadataHost, testCertificate } from '../lib/stack.js';

const scopeTools = 'mcp:tools';
const scopeLong = 'mcp:long';
const longTool = 'trigger-long-running-operation';
const callback = 'http://127.0.0.1:33419/callback';
const clientMetadata = {
  client_name: 'mcpauth e2e (TypeScript SDK through mcpauth proxy)',
  redirect_uris: [callback],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
};

/** The everything server's entry point, installed by npm ci from package-lock.json. */
const everythingMain = fileURLToPath(new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url));

/**
 * loopbackOnly is loaded into the everything server before it starts: it
 * takes the port from the last argument and binds to 127.0.0.1 only (the
 * server itself listens on every interface and reads PORT).
 */
const loopbackOnly = `data:text/javascript,${encodeURIComponent(`
import http from 'node:http';
process.env.PORT = process.argv.at(-1);
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, ...rest) {
  if (typeof port !== 'number' && typeof port !== 'string') return listen.call(this, port, ...rest);
  return listen.call(this, Number(port), '127.0.0.1', ...rest.filter((a) => typeof a === 'function'));
};
`)}`;

const cleanup = [];
const log = [];
let issuer, mcpURL, upstreamURL, clientID, browser, provider, transport, client;

/** startAll starts the upstream, mcpauth serve and mcpauth proxy on free loopback ports. */
async function startAll() {
  if (!existsSync(everythingMain)) {
    throw new Error(`${everythingMain} is missing: run "npm ci" in e2e (it installs the pinned @modelcontextprotocol/server-everything)`);
  }
  const bin = binaries();
  const data = tempDir(cleanup, 'proxy-data');
  await run('mcpauth users add', bin.mcpauth, ['users', 'add', 'alice', '--password-stdin', '--data', data], { stdin: alicePassword + '\n' });
  const tls = testCertificate(tempDir(cleanup, 'proxy-tls'));
  const host = await startMetadataHost(cleanup, tls, (url) => (url.endsWith('/oauth/proxy-client.json') ? { client_id: url, ...clientMetadata } : null));
  clientID = `${host.origin}/oauth/proxy-client.json`;
  const config = join(tempDir(cleanup, 'proxy-config'), 'proxy.yaml');
  writeFileSync(config, `tools:\n  ${longTool}: [${scopeLong}]\n`);

  let lastErr;
  // Three ports are chosen before the processes start (each must know the
  // others' URLs); another process may take one in between: try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const [upPort, asPort, pxPort] = [await freePort(), await freePort(), await freePort()];
    issuer = `http://127.0.0.1:${asPort}`;
    mcpURL = `http://127.0.0.1:${pxPort}/mcp`;
    upstreamURL = `http://127.0.0.1:${upPort}/mcp`;
    const procs = [
      new Proc('server-everything', process.execPath, ['--import', loopbackOnly, everythingMain, 'streamableHttp', String(upPort)]),
      new Proc('mcpauth serve', bin.mcpauth, ['serve', '--addr', `127.0.0.1:${asPort}`, '--issuer', issuer, '--data', data,
        '--resource', `${mcpURL}=${scopeTools},${scopeLong}`, '--dev-allow-loopback', '--cimd-ca-file', tls.certFile]),
      new Proc('mcpauth proxy', bin.mcpauth, ['proxy', '--listen', `127.0.0.1:${pxPort}`, '--upstream', upstreamURL,
        '--issuer', issuer, '--scope', scopeTools, '--config', config]),
    ];
    for (const p of procs) cleanup.push(() => p.stop());
    try {
      await procs[0].waitFor(/listening on port \d+/);
      await procs[1].waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
      await procs[2].waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
      return;
    } catch (err) {
      lastErr = err;
      for (const p of procs) await p.stop();
      if (procs.some((p) => /address already in use|EADDRINUSE/.test(p.output))) continue;
      throw err;
    }
  }
  throw lastErr;
}

/** rejectsUnauthorized expects the SDK's UnauthorizedError after it sent the user to authorize. */
async function rejectsUnauthorized(p, why) {
  let err;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UnauthorizedError, `${why}; got ${err?.stack ?? 'no error'}`);
}

function newTransport() {
  return new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider, fetch: recordingFetch(provider, log) });
}

before(async () => {
  await startAll();
  browser = new Browser();
  provider = new TestProvider({ redirectUrl: callback, clientMetadata, clientMetadataUrl: clientID, browser, issuer,
    username: 'alice', password: alicePassword });
});

after(async () => {
  await client?.close();
  await runCleanup(cleanup);
});

test('H5 H2: without a token the proxy answers 401 and serves metadata naming mcpauth', async () => {
  const res = await fetch(mcpURL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 401);
  const prmURL = `${new URL(mcpURL).origin}/.well-known/oauth-protected-resource/mcp`;
  assert.equal(res.headers.get('www-authenticate'), `Bearer scope="${scopeTools}", resource_metadata="${prmURL}"`);
  const prm = await (await fetch(prmURL, { signal: AbortSignal.timeout(10_000) })).json();
  assert.equal(prm.resource, mcpURL, 'H4: the resource is the URL clients use, the proxy\'s');
  assert.deepEqual(prm.authorization_servers, [issuer]);
});

test('the TypeScript SDK authorizes at mcpauth serve, lists and calls tools of server-everything through the proxy', async () => {
  transport = newTransport();
  client = new Client({ name: 'mcpauth-e2e-proxy', version: '1.0.0' });
  await rejectsUnauthorized(client.connect(transport), 'the first connect must send the user to the authorization server');
  const az = provider.authorizationURLs[0];
  assert.equal(az.origin, issuer);
  assert.equal(az.searchParams.get('resource'), mcpURL);
  assert.equal(az.searchParams.get('scope'), scopeTools);
  assert.deepEqual(browser.pages.map((p) => p.kind), ['login', 'consent']);
  await transport.finishAuth(provider.takeCode());

  transport = newTransport();
  client = new Client({ name: 'mcpauth-e2e-proxy', version: '1.0.0' });
  await client.connect(transport);
  assert.match(transport.sessionId ?? '', /\S/, 'the upstream\'s Mcp-Session-Id reached the client through the proxy');
  assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything', 'the third-party server answered initialize');

  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const want of ['echo', 'get-sum', longTool]) assert.ok(names.includes(want), `tools/list lacks ${want}: ${names}`);
  const echo = await client.callTool({ name: 'echo', arguments: { message: 'hello through mcpauth proxy' } });
  assert.deepEqual(echo.content, [{ type: 'text', text: 'Echo: hello through mcpauth proxy' }]);
  const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
  assert.match(sum.content[0].text, /42/);

  const streams = log.filter((r) => r.method === 'GET' && r.url === mcpURL);
  assert.ok(streams.some((r) => r.status === 200), `the SDK's long-lived GET stream opened through the proxy: ${JSON.stringify(streams)}`);
});

test('H6 step-up: the proxy\'s tools: rule asks for mcp:long, the SDK gets it, the streaming tool runs', async () => {
  const before = provider.authorizationURLs.length;
  await rejectsUnauthorized(client.callTool({ name: longTool, arguments: { duration: 1, steps: 2 } }),
    'a token without mcp:long must be sent back to the authorization server');
  const denied = log.findLast((r) => r.status === 403);
  assert.ok(denied && denied.body.includes(longTool), 'the proxy answered the tools/call with 403');
  assert.equal(provider.authorizationURLs.length, before + 1);
  assert.deepEqual(provider.authorizationURLs.at(-1).searchParams.get('scope').split(' ').sort(), [scopeLong, scopeTools]);
  await transport.finishAuth(provider.takeCode());
  assert.deepEqual(provider.tokens().scope.split(' ').sort(), [scopeLong, scopeTools]);

  // Progress notifications arrive on the POST's SSE stream, then the result.
  const events = [];
  const res = await client.callTool({ name: longTool, arguments: { duration: 1, steps: 3 } }, undefined, {
    onprogress: (p) => events.push(`progress ${p.progress}/${p.total}`),
  });
  events.push('result');
  assert.deepEqual(events, ['progress 1/3', 'progress 2/3', 'progress 3/3', 'result']);
  assert.match(res.content[0].text, /Long running operation completed/);
});

test('streams are not buffered: the first progress of a 60 s operation arrives while it runs', async () => {
  const abort = new AbortController();
  let firstProgress;
  const gotProgress = new Promise((resolve) => {
    firstProgress = resolve;
  });
  const call = client.callTool({ name: longTool, arguments: { duration: 60, steps: 60 } }, undefined, {
    onprogress: (p) => firstProgress(p),
    signal: abort.signal,
    timeout: 90_000,
  });
  call.catch(() => {}); // rejected below by the abort
  // A buffering proxy would hold every event until the operation ends, 60 s
  // from now; 30 s is only a bound for a failing run, not a measurement.
  const p = await Promise.race([gotProgress, new Promise((_, reject) => setTimeout(() => reject(new Error('no progress within 30 s of a 60 s operation: the proxy buffers the stream')), 30_000).unref())]);
  assert.equal(p.progress, 1);
  abort.abort();
  await assert.rejects(call);
});

test('DELETE ends the session through the proxy; its ID is refused afterwards', async () => {
  const sid = transport.sessionId;
  await transport.terminateSession();
  const del = log.findLast((r) => r.method === 'DELETE');
  assert.equal(del?.status, 200, JSON.stringify(del));
  const res = await fetch(mcpURL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      authorization: `Bearer ${provider.tokens().access_token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 404);
  assert.equal((await res.json()).id, 9, 'a JSON-RPC error with the request id');
  await client.close();
  client = undefined;
});
