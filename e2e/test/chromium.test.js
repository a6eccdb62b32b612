// The consent page in a real browser (headless Chromium): it renders with
// its styles under the page's Content-Security-Policy, shows the client
// host, the unverified name, the redirect host and the localhost warning,
// and its Approve button, pressed by the browser itself, delivers the code
// to the client's loopback callback (CSP form-action allows that redirect).

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { Chromium } from '../lib/chromium.js';
import { desktopClientName, pendingConsent } from '../lib/consent.js';
import { runCleanup } from '../lib/stack.js';

const cleanup = [];
let pc, page, callbackPort;
let callbackHit;
const callback = new Promise((resolve) => {
  callbackHit = resolve;
});

before(async () => {
  const srv = createServer((req, res) => {
    callbackHit(new URL(req.url, 'http://127.0.0.1'));
    res.writeHead(200, { 'content-type': 'text/plain' }).end('signed in; you can close this window');
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise((resolve) => {
    srv.closeAllConnections();
    srv.close(resolve);
  }));
  callbackPort = srv.address().port;
  pc = await pendingConsent(cleanup, { callbackPort });
  const chromium = await Chromium.launch(cleanup);
  page = await chromium.newPage();
  await page.setCookie(pc.st.issuer, pc.cookieName, pc.cookieValue);
  await page.goto(pc.consentURL);
});

after(() => runCleanup(cleanup));

test('E5 decision 6 the consent page in Chromium: host, unverified name, redirect host, localhost warning', async () => {
  const view = await page.evaluate(`(() => {
    const w = document.getElementById('localhost-warning');
    return {
      title: document.title,
      host: document.getElementById('client-host')?.textContent,
      hostSize: parseFloat(getComputedStyle(document.getElementById('client-host')).fontSize),
      bodySize: parseFloat(getComputedStyle(document.body).fontSize),
      badges: [...document.querySelectorAll('.badge')].map((b) => b.textContent),
      name: document.querySelector('p strong')?.textContent,
      redirectHost: document.getElementById('redirect-host')?.textContent,
      warning: w ? w.innerText : null,
      warningShown: w ? w.getBoundingClientRect().height > 0 : false,
      warningBackground: w ? getComputedStyle(w).backgroundColor : null,
      scopes: [...document.querySelectorAll('ul.scopes li')].map((li) => li.textContent),
      buttons: [...document.querySelectorAll('button[name=decision]')].map((b) => b.value),
    };
  })()`);
  assert.equal(view.title, 'Authorize access · mcpauth');
  assert.equal(view.host, 'localhost');
  assert.ok(view.hostSize > view.bodySize, `the client host is prominent (${view.hostSize}px against ${view.bodySize}px)`);
  assert.equal(view.name, desktopClientName);
  assert.ok(view.badges.includes('unverified'), `badges ${view.badges}`);
  assert.equal(view.redirectHost, `127.0.0.1:${callbackPort}`);
  assert.ok(view.warningShown, 'the localhost warning is visible');
  assert.match(view.warning, /Only approve if you just started this on this computer/);
  assert.equal(view.warningBackground, 'rgb(255, 241, 240)', 'the page style applies under its CSP');
  assert.deepEqual(view.scopes, ['mcp:identity', 'mcp:tools']);
  assert.deepEqual(view.buttons, ['approve', 'deny']);
});

test('E8 E10 pressing Approve in Chromium sends the code to the loopback callback', async () => {
  await page.evaluate(`document.querySelector('button[value=approve]').click()`);
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the callback was not reached within 15 s')), 15_000).unref());
  const cb = await Promise.race([callback, timeout]);
  assert.equal(cb.pathname, '/callback');
  assert.match(cb.searchParams.get('code') ?? '', /\S{20,}/);
  assert.equal(cb.searchParams.get('state'), pc.state);
  assert.equal(cb.searchParams.get('iss'), pc.st.issuer);
});
