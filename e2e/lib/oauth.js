// Direct protocol calls the tests use to check what the SDK did.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** postToken sends a form to the token endpoint and returns status and JSON. */
export async function postToken(issuer, form) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: await res.json() };
}

/** tokenClaims decodes a JWT's payload without verifying it (the MCP server verifies). */
export function tokenClaims(jwt) {
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new Error(`not a JWT: ${jwt.slice(0, 20)}…`);
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

/**
 * withToken connects a second MCP client that has nothing but the given
 * access token, runs f with it and closes it.
 */
export async function withToken(mcpURL, accessToken, f) {
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), {
    requestInit: { headers: { authorization: `Bearer ${accessToken}` } },
  });
  const client = new Client({ name: 'mcpauth-e2e-bearer', version: '1.0.0' });
  await client.connect(transport);
  try {
    return await f(client);
  } finally {
    await client.close();
  }
}
