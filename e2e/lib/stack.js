// The system under test: `mcpauth serve`, examples/mcpserver behind it, and,
// for CIMD clients, an https server on loopback that hosts the client's
// metadata document with a certificate made for this run.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { binaries, freePort, Proc, run, tempDir } from './procs.js';

/** The example server's scopes: echo needs the first, whoami both. */
export const scopeTools = 'mcp:tools';
export const scopeIdentity = 'mcp:identity';

/** The password of the test user alice. */
export const alicePassword = 'correct horse battery staple e2e';

/**
 * testCertificate makes a self-signed P-256 certificate for localhost, valid
 * for a day, with the openssl CLI. Nothing of it is committed.
 */
export function testCertificate(dir) {
  const key = join(dir, 'localhost-key.pem');
  const cert = join(dir, 'localhost-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost', '-addext', 'extendedKeyUsage=serverAuth'], { stdio: 'pipe', timeout: 20_000 });
  return { keyFile: key, certFile: cert, key: readFileSync(key), cert: readFileSync(cert) };
}

/**
 * startMetadataHost serves documents over https on 127.0.0.1 with the test
 * certificate, reachable as https://localhost:PORT. document(url) returns
 * the JSON of a client ID metadata document for its own URL.
 */
export async function startMetadataHost(cleanup, tls, document) {
  const fetches = [];
  const srv = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    fetches.push(req.url);
    const url = `${origin}${req.url}`;
    const doc = document(url);
    if (!doc) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' }).end(JSON.stringify(doc));
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const origin = `https://localhost:${srv.address().port}`;
  cleanup.push(() => new Promise((resolve) => {
    srv.closeAllConnections();
    srv.close(resolve);
  }));
  return { origin, fetches };
}

/**
 * startStack starts examples/mcpserver and `mcpauth serve` protecting it.
 * Options: serveArgs (extra flags for serve), users (name -> password).
 * Returns the issuer, the MCP URL and the processes.
 */
export async function startStack(cleanup, { serveArgs = [], users = { alice: alicePassword } } = {}) {
  const bin = binaries();
  const data = tempDir(cleanup, 'data');
  for (const [name, pw] of Object.entries(users)) {
    await run('mcpauth users add', bin.mcpauth, ['users', 'add', name, '--password-stdin', '--data', data], { stdin: pw + '\n' });
  }
  let lastErr;
  // The issuer's port is chosen before the MCP server starts, because the
  // MCP server must know the issuer and mcpauth the MCP server's URL. Another
  // process may take a free port in between: try again with another.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const mcp = new Proc('mcpserver', bin.mcpserver, ['--addr', '127.0.0.1:0', '--issuer', issuer]);
    cleanup.push(() => mcp.stop());
    const [, mcpURL] = await mcp.waitFor(/MCP URL: (\S+)/);
    const auth = new Proc('mcpauth serve', bin.mcpauth, ['serve', '--addr', `127.0.0.1:${port}`, '--issuer', issuer,
      '--data', data, '--resource', `${mcpURL}=${scopeTools},${scopeIdentity}`, ...serveArgs]);
    cleanup.push(() => auth.stop());
    try {
      await auth.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
    } catch (err) {
      lastErr = err;
      await auth.stop();
      await mcp.stop();
      if (/address already in use/.test(auth.output)) continue;
      throw err;
    }
    return { issuer, mcpURL, auth, mcp, data };
  }
  throw lastErr;
}

/** runCleanup runs the cleanup functions in reverse order, all of them. */
export async function runCleanup(cleanup) {
  const errors = [];
  while (cleanup.length > 0) {
    try {
      await cleanup.pop()();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}
