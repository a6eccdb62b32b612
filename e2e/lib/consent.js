// A consent page waiting for a signed-in user: the setup shared by the
// Chromium test and the screenshot script.

import { createHash, randomBytes } from 'node:crypto';
import { Browser } from './browser.js';
import { tempDir } from './procs.js';
import { alicePassword, scopeIdentity, scopeTools, startMetadataHost, startStack, testCertificate } from './stack.js';

/** The registered redirect URI of the desktop client (loopback: any port matches). */
export const desktopRedirect = 'http://127.0.0.1:8976/callback';

/** The client name shown, unverified, on the consent page. */
export const desktopClientName = 'Acme MCP Desktop';

/**
 * pendingConsent starts mcpauth and the example MCP server, serves the
 * metadata document of a desktop client whose only redirect URI is on
 * localhost, signs alice in for an authorization request of that client
 * (redirect_uri on callbackPort) and stops at the consent page. It returns
 * what a browser needs to show that page: its URL and the session cookie.
 */
export async function pendingConsent(cleanup, { callbackPort }) {
  const tls = testCertificate(tempDir(cleanup, 'tls'));
  const host = await startMetadataHost(cleanup, tls, (url) =>
    url.endsWith('/oauth/client.json')
      ? {
          client_id: url,
          client_name: desktopClientName,
          redirect_uris: [desktopRedirect],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }
      : null,
  );
  const clientID = `${host.origin}/oauth/client.json`;
  const st = await startStack(cleanup, { serveArgs: ['--dev-allow-loopback', '--cimd-ca-file', tls.certFile] });
  const redirectUri = `http://127.0.0.1:${callbackPort}/callback`;
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const az = new URL(`${st.issuer}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientID, redirect_uri: redirectUri, state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    resource: st.mcpURL, scope: `${scopeTools} ${scopeIdentity}`,
  })) {
    az.searchParams.set(k, v);
  }
  const browser = new Browser();
  const { consentURL } = await browser.authorize(az, { redirectUri, username: 'alice', password: alicePassword, stopAtConsent: true });
  if (!consentURL) throw new Error('the consent page was not shown');
  // The session cookie, by name: the jar may hold other cookies of the server.
  const session = [...browser.cookies].find(([name]) => name.endsWith('mcpauth_session'));
  if (!session) throw new Error(`no session cookie after sign-in: ${[...browser.cookies.keys()]}`);
  const [cookieName, cookieValue] = session;
  return { st, clientID, consentURL, cookieName, cookieValue, redirectUri, state };
}
