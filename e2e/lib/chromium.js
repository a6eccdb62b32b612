// Headless Chromium (the Debian package) driven over the DevTools protocol
// on a pipe (--remote-debugging-pipe: JSON messages ending in NUL on file
// descriptors 3 and 4), so no WebSocket library or port is needed.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { tempDir } from './procs.js';

/** The Chromium binary; E2E_CHROMIUM overrides the Debian package's path. */
export function chromiumPath() {
  const p = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
  try {
    accessSync(p, constants.X_OK);
  } catch {
    throw new Error(`${p} is not an executable: install the Debian package chromium (apt-get install -y chromium) or set E2E_CHROMIUM`);
  }
  return p;
}

/**
 * Flags for a quiet, isolated headless browser: no sandbox (root in a
 * container), no GPU, no background traffic, and no name resolution at all:
 * it reaches only 127.0.0.1, where the servers under test listen.
 */
function chromiumFlags(userDataDir) {
  return [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-extensions', '--disable-default-apps', '--disable-domain-reliability', '--no-pings',
    '--disable-client-side-phishing-detection', '--disable-features=Translate,OptimizationHints,MediaRouter',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--hide-scrollbars', '--disable-dev-shm-usage',
    `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe', 'about:blank',
  ];
}

const callTimeout = 15_000;

/** Browser is one Chromium process and its DevTools connection. */
export class Chromium {
  static async launch(cleanup) {
    const c = new Chromium(chromiumPath(), tempDir(cleanup, 'chromium'));
    cleanup.push(() => c.close());
    await c.send('Browser.getVersion');
    return c;
  }

  constructor(bin, dir) {
    this.nextID = 1;
    this.pending = new Map();
    this.listeners = [];
    this.stderr = '';
    this.child = spawn(bin, chromiumFlags(dir), { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
    this.child.on('error', (err) => this.failAll(err));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    let buf = Buffer.alloc(0);
    this.child.stdio[4].on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (let i = buf.indexOf(0); i >= 0; i = buf.indexOf(0)) {
        this.dispatch(JSON.parse(buf.subarray(0, i).toString('utf8')));
        buf = buf.subarray(i + 1);
      }
    });
    this.child.on('exit', (code, signal) => this.failAll(new Error(`chromium exited (code ${code}, signal ${signal}):\n${this.stderr}`)));
  }

  failAll(err) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  dispatch(msg) {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
      return;
    }
    const hits = this.listeners.filter((l) => l.method === msg.method && l.sessionId === msg.sessionId);
    this.listeners = this.listeners.filter((l) => !hits.includes(l));
    for (const l of hits) l.resolve(msg.params);
  }

  /** send calls a DevTools method, on a page session when sessionId is set. */
  send(method, params = {}, sessionId) {
    const id = this.nextID++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${callTimeout} ms; chromium stderr:\n${this.stderr}`));
      }, callTimeout);
      this.pending.set(id, {
        method,
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + '\0');
    });
  }

  /** event resolves with the params of the next event named method. */
  event(method, sessionId, timeout = callTimeout) {
    return new Promise((resolve, reject) => {
      const l = { method, sessionId };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((x) => x !== l);
        reject(new Error(`no ${method} event within ${timeout} ms`));
      }, timeout);
      l.resolve = (params) => {
        clearTimeout(timer);
        resolve(params);
      };
      this.listeners.push(l);
    });
  }

  /** newPage opens a tab of the given CSS size and returns a Page. */
  async newPage({ width = 820, height = 900 } = {}) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Network.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    return page;
  }

  async close() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.send('Browser.close').catch(() => {});
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Page is one tab. */
export class Page {
  constructor(browser, sessionId) {
    this.browser = browser;
    this.sessionId = sessionId;
  }

  send(method, params) {
    return this.browser.send(method, params, this.sessionId);
  }

  event(method, timeout) {
    return this.browser.event(method, this.sessionId, timeout);
  }

  /** setCookie gives the browser a cookie for url's origin. */
  async setCookie(url, name, value) {
    const { success } = await this.send('Network.setCookie', { url, name, value, path: '/', httpOnly: true, sameSite: 'Lax' });
    if (!success) throw new Error(`Network.setCookie ${name} for ${url} failed`);
  }

  /** goto navigates and waits for the load event. */
  async goto(url) {
    const loaded = this.event('Page.loadEventFired');
    const { errorText } = await this.send('Page.navigate', { url });
    if (errorText) {
      loaded.catch(() => {});
      throw new Error(`navigate to ${url}: ${errorText}`);
    }
    await loaded;
  }

  /** evaluate runs an expression in the page and returns its JSON value. */
  async evaluate(expression) {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (exceptionDetails) throw new Error(`evaluate ${expression}: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    return result.value;
  }

  /** screenshot returns a PNG of the whole page. */
  async screenshot() {
    const { cssContentSize } = await this.send('Page.getLayoutMetrics');
    const { data } = await this.send('Page.captureScreenshot', {
      format: 'png',
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: Math.ceil(cssContentSize.width), height: Math.ceil(cssContentSize.height), scale: 1 },
    });
    return Buffer.from(data, 'base64');
  }
}
