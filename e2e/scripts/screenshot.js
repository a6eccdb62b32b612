// npm run screenshot: renders mcpauth's consent page for a client whose only
// redirect URI is on localhost in headless Chromium and writes
// docs/consent-localhost.png. Needs E2E_MCPAUTH_BIN and E2E_MCPSERVER_BIN
// (make screenshot sets them) and the Debian package chromium.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Chromium } from '../lib/chromium.js';
import { pendingConsent } from '../lib/consent.js';
import { freePort } from '../lib/procs.js';
import { runCleanup } from '../lib/stack.js';

const out = fileURLToPath(new URL('../../docs/consent-localhost.png', import.meta.url));
const cleanup = [];
const deadline = setTimeout(() => {
  console.error('screenshot: gave up after 60 s');
  process.exit(1);
}, 60_000);

try {
  const pc = await pendingConsent(cleanup, { callbackPort: await freePort() });
  const chromium = await Chromium.launch(cleanup);
  const page = await chromium.newPage({ width: 760, height: 750 });
  await page.setCookie(pc.st.issuer, pc.cookieName, pc.cookieValue);
  await page.goto(pc.consentURL);
  const ok = await page.evaluate(`!!document.getElementById('client-host') && !!document.getElementById('localhost-warning') && !!document.getElementById('redirect-host')`);
  if (!ok) throw new Error('the page is not the consent page with a localhost warning');
  writeFileSync(out, await page.screenshot());
  console.log(`wrote ${out}`);
} finally {
  await runCleanup(cleanup);
  clearTimeout(deadline);
}
