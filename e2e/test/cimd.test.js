// The TypeScript MCP SDK as a CIMD client (clientMetadataUrl) against the
// real `mcpauth serve` and examples/mcpserver: login and consent through the
// real forms, tools, refresh with rotation and replay detection, step-up.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser, textOf } from '../lib/browser.js';
import { tempDir } from '../lib/procs.js';
import { recordingFetch, TestProvider } from '../lib/provider.js';
import { alicePassword, runCleanup, scopeIdentity, scopeTools, startMetadataHost, startStack, testCertificate } from '../lib/stack.js';
import { postToken, tokenClaims, withToken } from '../lib/oauth.js';

const callback = 'http://127.0.0.1:33418/callback';
const clientName = 'mcpauth e2e (TypeScript SDK)';
const clientMetadata = {
  client_name: clientName,
  redirect_uris: [callback],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
};

const cleanup = [];
const log = [];
let st, host, clientID, browser, provider, transport, client, firstFamily;

function newTransport() {
  return new StreamableHTTPClientTransport(new URL(st.mcpURL), { authProvider: provider, fetch: recordingFetch(provider, log) });
}

/**
 * rejectsUnauthorized expects the SDK's UnauthorizedError, thrown after it
 * called redirectToAuthorization, and reports any other error in full.
 */
async function rejectsUnauthorized(p, why) {
  let err;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UnauthorizedError, `${why}; got ${err?.stack ?? 'no error'}`);
}

before(async () => {
  const tls = testCertificate(tempDir(cleanup, 'tls'));
  host = await startMetadataHost(cleanup, tls, (url) => (url.endsWith('/oauth/client.json') ? { client_id: url, ...clientMetadata } : null));
  clientID = `${host.origin}/oauth/client.json`;
  st = await startStack(cleanup, { serveArgs: ['--dev-allow-loopback', '--cimd-ca-file', tls.certFile] });
  browser = new Browser();
  provider = new TestProvider({ redirectUrl: callback, clientMetadata, clientMetadataUrl: clientID, browser, issuer: st.issuer,
    username: 'alice', password: alicePassword });
});

after(async () => {
  await client?.close();
  await runCleanup(cleanup);
});

test('G3 metadata: CIMD supported, S256, iss parameter, no registration endpoint without --enable-dcr', async () => {
  const meta = await (await fetch(`${st.issuer}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) })).json();
  assert.equal(meta.issuer, st.issuer);
  assert.equal(meta.client_id_metadata_document_supported, true);
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
  assert.equal(meta.authorization_response_iss_parameter_supported, true);
  assert.equal(meta.registration_endpoint, undefined);
});

test('J1-J6 CIMD client: 401, discovery, login, consent, code, token, tools', async () => {
  transport = newTransport();
  client = new Client({ name: 'mcpauth-e2e', version: '1.0.0' });
  await rejectsUnauthorized(client.connect(transport), 'the first connect must send the user to the authorization server');

  assert.equal(provider.authorizationURLs.length, 1);
  const az = provider.authorizationURLs[0];
  assert.equal(az.origin, st.issuer);
  assert.equal(az.searchParams.get('client_id'), clientID, 'the SDK uses its metadata URL as client_id (CIMD)');
  assert.equal(az.searchParams.get('resource'), st.mcpURL);
  assert.equal(az.searchParams.get('scope'), scopeTools, 'the scope announced in the 401 challenge');
  assert.equal(az.searchParams.get('code_challenge_method'), 'S256');
  assert.ok(host.fetches.includes('/oauth/client.json'), 'mcpauth fetched the metadata document over https');

  assert.deepEqual(browser.pages.map((p) => p.kind), ['login', 'consent']);
  const consent = textOf(browser.pages[1].html);
  assert.match(browser.pages[1].html, /id="client-host">localhost</, 'E5: the client_id host name first and prominent');
  assert.ok(consent.includes(clientName), 'client_name shown');
  assert.match(consent, /unverified/, 'E5: client_name labelled unverified');
  assert.match(consent, /development client/, 'E5: a loopback client under --dev-allow-loopback is marked');
  assert.ok(consent.includes(clientID), 'the full client_id');
  assert.match(browser.pages[1].html, /id="redirect-host">127\.0\.0\.1:33418</, 'E5: the redirect host');
  assert.match(browser.pages[1].html, /id="localhost-warning"/, 'E5, attack 35: every redirect URI is on localhost');
  assert.ok(consent.includes(scopeTools) && !consent.includes(scopeIdentity), 'only the requested scope');
  assert.ok(consent.includes(st.mcpURL), 'the MCP server');

  await transport.finishAuth(provider.takeCode());
  const tok = provider.tokens();
  assert.equal(tok.token_type.toLowerCase(), 'bearer');
  assert.equal(tok.scope, scopeTools);
  assert.ok(tok.refresh_token, 'F: refresh token issued for a client with the refresh_token grant');
  const claims = tokenClaims(tok.access_token);
  assert.equal(claims.iss, st.issuer);
  assert.equal(claims.aud, st.mcpURL, 'aud is the canonical resource');
  assert.equal(claims.client_id, clientID);

  transport = newTransport();
  client = new Client({ name: 'mcpauth-e2e', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['echo', 'whoami']);
  const res = await client.callTool({ name: 'echo', arguments: { text: 'hello through mcpauth' } });
  assert.equal(res.isError, undefined);
  assert.deepEqual(res.content, [{ type: 'text', text: 'hello through mcpauth' }]);
});

test('F refresh: the SDK refreshes with the refresh token, which rotates, and the new access token works', async () => {
  const old = provider.tokens();
  provider.forgetAccessToken(); // as if it expired: the server answers 401 and the SDK refreshes
  const from = log.length;
  const res = await client.callTool({ name: 'echo', arguments: { text: 'after refresh' } });
  assert.deepEqual(res.content, [{ type: 'text', text: 'after refresh' }]);

  const refreshes = log.slice(from).filter((r) => r.url === `${st.issuer}/token` && r.method === 'POST');
  assert.equal(refreshes.length, 1, 'one token request');
  const form = new URLSearchParams(refreshes[0].body);
  assert.equal(form.get('grant_type'), 'refresh_token');
  assert.equal(form.get('refresh_token'), old.refresh_token);
  assert.equal(refreshes[0].status, 200);

  const fresh = provider.tokens();
  assert.notEqual(fresh.access_token, old.access_token);
  assert.ok(fresh.refresh_token && fresh.refresh_token !== old.refresh_token, 'F: refresh tokens rotate on every use');
  assert.equal(fresh.scope, scopeTools, 'F8: a refresh never changes the scope');

  // The new access token alone is enough for another client.
  const other = await withToken(st.mcpURL, fresh.access_token, (c) => c.callTool({ name: 'echo', arguments: { text: 'new token' } }));
  assert.deepEqual(other.content, [{ type: 'text', text: 'new token' }]);

  firstFamily = { rotatedOut: old.refresh_token, current: fresh.refresh_token };
});

test('H6 step-up: 403 insufficient_scope, consent again for the broader scope, whoami succeeds', async () => {
  const pagesBefore = browser.pages.length;
  const azBefore = provider.authorizationURLs.length;
  await rejectsUnauthorized(client.callTool({ name: 'whoami', arguments: {} }),
    'the SDK sends the user to the authorization server for the missing scope');
  const denied = log.findLast((r) => r.status === 403);
  assert.ok(denied, 'the MCP server answered 403');

  assert.equal(provider.authorizationURLs.length, azBefore + 1);
  const az = provider.authorizationURLs.at(-1);
  assert.deepEqual(az.searchParams.get('scope').split(' ').sort(), [scopeIdentity, scopeTools]);
  assert.deepEqual(browser.pages.slice(pagesBefore).map((p) => p.kind), ['consent'],
    'still signed in, but the remembered consent does not cover the new scope: the consent page again');
  const consent = textOf(browser.pages.at(-1).html);
  assert.ok(consent.includes(scopeIdentity), 'the consent page shows the new scope');

  await transport.finishAuth(provider.takeCode());
  assert.deepEqual(provider.tokens().scope.split(' ').sort(), [scopeIdentity, scopeTools]);
  const res = await client.callTool({ name: 'whoami', arguments: {} });
  assert.equal(res.isError, undefined, JSON.stringify(res));
  assert.equal(res.structuredContent.client_id, clientID);
  assert.deepEqual([...res.structuredContent.scopes].sort(), [scopeIdentity, scopeTools]);
  assert.match(res.structuredContent.subject, /\S/);
});

test('F refresh after step-up keeps the broader scope (a new family, untouched by the revoked one)', async () => {
  const old = provider.tokens();
  provider.forgetAccessToken();
  const res = await client.callTool({ name: 'whoami', arguments: {} });
  assert.equal(res.isError, undefined, JSON.stringify(res));
  const fresh = provider.tokens();
  assert.notEqual(fresh.refresh_token, old.refresh_token);
  assert.deepEqual(fresh.scope.split(' ').sort(), [scopeIdentity, scopeTools]);
  // Approved once: a new authorization for the same scopes needs no page.
  const pages = browser.pages.length;
  const cb = await browser.authorize(provider.authorizationURLs.at(-1), { redirectUri: callback });
  assert.ok(cb.code, JSON.stringify(cb));
  assert.equal(browser.pages.length, pages, 'E12: consent remembered per user, client, resource and scopes');
});

test('F replay: the rotated-out refresh token is rejected and revokes its family, not the step-up family', async () => {
  const replay = await postToken(st.issuer, { grant_type: 'refresh_token', refresh_token: firstFamily.rotatedOut, client_id: clientID });
  assert.equal(replay.status, 400);
  assert.equal(replay.json.error, 'invalid_grant');
  const family = await postToken(st.issuer, { grant_type: 'refresh_token', refresh_token: firstFamily.current, client_id: clientID });
  assert.equal(family.status, 400, 'the refresh token issued by the rotation died with its family');
  assert.equal(family.json.error, 'invalid_grant');

  const other = await postToken(st.issuer, { grant_type: 'refresh_token', refresh_token: provider.tokens().refresh_token, client_id: clientID });
  assert.equal(other.status, 200, JSON.stringify(other.json));
  assert.deepEqual(other.json.scope.split(' ').sort(), [scopeIdentity, scopeTools]);
});
