// The TypeScript MCP SDK without clientMetadataUrl: it registers itself
// with RFC 7591 dynamic client registration at `mcpauth serve --enable-dcr`,
// then signs in, consents (the page marks the client self-asserted), calls
// tools on examples/mcpserver and refreshes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser, textOf } from '../lib/browser.js';
import { recordingFetch, TestProvider } from '../lib/provider.js';
import { alicePassword, runCleanup, scopeTools, startStack } from '../lib/stack.js';
import { postToken } from '../lib/oauth.js';

const callback = 'http://127.0.0.1:33420/callback';
const clientMetadata = {
  client_name: 'mcpauth e2e (TypeScript SDK, DCR)',
  redirect_uris: [callback],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
};

const cleanup = [];
const log = [];
let st, browser, provider, transport, client;

function connect() {
  transport = new StreamableHTTPClientTransport(new URL(st.mcpURL), { authProvider: provider, fetch: recordingFetch(provider, log) });
  client = new Client({ name: 'mcpauth-e2e-dcr', version: '1.0.0' });
  return client.connect(transport);
}

before(async () => {
  st = await startStack(cleanup, { serveArgs: ['--enable-dcr'] });
  browser = new Browser();
  provider = new TestProvider({ redirectUrl: callback, clientMetadata, browser, issuer: st.issuer, username: 'alice', password: alicePassword });
});

after(async () => {
  await client?.close();
  await runCleanup(cleanup);
});

test('I1 I6 DCR client: registration, login, consent marked self-asserted, tools', async () => {
  const meta = await (await fetch(`${st.issuer}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) })).json();
  assert.equal(meta.registration_endpoint, `${st.issuer}/register`, 'G3: registration_endpoint only when DCR is on');

  let err;
  try {
    await connect();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UnauthorizedError, `the first connect sends the user to the authorization server; got ${err?.stack}`);
  const reg = log.find((r) => r.url === `${st.issuer}/register`);
  assert.equal(reg?.status, 201, 'the SDK registered (RFC 7591 §3.2.1)');
  const info = provider.clientInformation();
  assert.ok(info.client_id && !info.client_id.startsWith('https://') && !info.client_id.startsWith('http://'),
    `I4: a registered client_id never looks like a CIMD URL: ${info.client_id}`);
  assert.equal(info.client_secret, undefined, 'a public client gets no secret');
  assert.deepEqual(info.redirect_uris, [callback]);

  assert.equal(provider.authorizationURLs[0].searchParams.get('client_id'), info.client_id);
  assert.deepEqual(browser.pages.map((p) => p.kind), ['login', 'consent']);
  const consent = browser.pages[1].html;
  assert.match(consent, new RegExp(`id="client-host">${info.client_id}<`), 'the consent page names the registered client_id');
  assert.match(textOf(consent), /self-asserted, unverified/, 'I6: DCR clients are marked self-asserted');
  assert.match(consent, /id="localhost-warning"/);

  await transport.finishAuth(provider.takeCode());
  assert.equal(provider.tokens().scope, scopeTools);
  await connect();
  const res = await client.callTool({ name: 'echo', arguments: { text: 'registered' } });
  assert.deepEqual(res.content, [{ type: 'text', text: 'registered' }]);
});

test('F DCR client refresh rotates the refresh token; the old one is then rejected', async () => {
  const old = provider.tokens();
  provider.forgetAccessToken();
  const res = await client.callTool({ name: 'echo', arguments: { text: 'refreshed' } });
  assert.deepEqual(res.content, [{ type: 'text', text: 'refreshed' }]);
  const fresh = provider.tokens();
  assert.ok(fresh.refresh_token && fresh.refresh_token !== old.refresh_token);
  const replay = await postToken(st.issuer, { grant_type: 'refresh_token', refresh_token: old.refresh_token, client_id: provider.clientInformation().client_id });
  assert.equal(replay.status, 400);
  assert.equal(replay.json.error, 'invalid_grant');
});
