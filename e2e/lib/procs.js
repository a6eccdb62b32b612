// Processes under test: the mcpauth and mcpserver binaries, started on
// 127.0.0.1 only, watched line by line, and always stopped at the end.

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How long a process may take to print what we wait for. */
const startTimeout = 20_000;

/**
 * binaries returns the paths of the binaries under test, from
 * E2E_MCPAUTH_BIN and E2E_MCPSERVER_BIN (set by `make e2e`). A missing or
 * non-executable binary throws: the tests fail, they never skip.
 */
export function binaries() {
  const out = {};
  for (const [key, env] of [['mcpauth', 'E2E_MCPAUTH_BIN'], ['mcpserver', 'E2E_MCPSERVER_BIN']]) {
    const p = process.env[env];
    if (!p) {
      throw new Error(`${env} is not set: run the end-to-end tests with "make e2e", which builds ${key} and sets it`);
    }
    try {
      accessSync(p, constants.X_OK);
    } catch (err) {
      throw new Error(`${env}=${p} is not an executable file (${err.code}): run "make e2e" to build it`);
    }
    out[key] = p;
  }
  return out;
}

/** freePort asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort() {
  const srv = createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** tempDir makes a fresh directory that cleanup removes. */
export function tempDir(cleanup, prefix) {
  const dir = mkdtempSync(join(tmpdir(), `mcpauth-e2e-${prefix}-`));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * childEnv is the environment of a process under test: ours without any
 * MCPAUTH_* variable, so a developer's settings never leak into a test.
 */
function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('MCPAUTH_')) env[k] = v;
  }
  return env;
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

/** Proc is a running process whose output is kept for error messages. */
export class Proc {
  constructor(name, bin, args, { stdin } = {}) {
    this.name = name;
    this.output = '';
    this.exited = new Promise((resolve) => {
      this.child = spawn(bin, args, { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
      this.child.on('exit', (code, signal) => {
        live.delete(this);
        resolve({ code, signal });
      });
      this.child.on('error', (err) => {
        this.output += `\n[spawn error: ${err.message}]`;
        live.delete(this);
        resolve({ code: -1, signal: null });
      });
    });
    live.add(this);
    this.waiters = [];
    for (const s of [this.child.stdout, this.child.stderr]) {
      s.setEncoding('utf8');
      s.on('data', (d) => {
        this.output += d;
        this.waiters = this.waiters.filter((w) => !w.check());
      });
    }
    this.child.stdin.end(stdin ?? '');
  }

  /** waitFor resolves with the first match of re in the output. */
  waitFor(re, timeout = startTimeout) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const m = this.output.match(re);
          if (m) {
            clearTimeout(timer);
            resolve(m);
            return true;
          }
          return false;
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${this.name}: no ${re} within ${timeout} ms; output:\n${this.tail()}`));
      }, timeout);
      if (w.check()) return;
      this.waiters.push(w);
      this.exited.then(({ code, signal }) => {
        if (!w.check()) {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited (code ${code}, signal ${signal}) before printing ${re}; output:\n${this.tail()}`));
        }
      });
    });
  }

  /** tail is the end of the output, for error messages. */
  tail(n = 4000) {
    return this.output.length > n ? '…' + this.output.slice(-n) : this.output;
  }

  /** stop sends SIGTERM, then SIGKILL after 10 s, and waits for the exit. */
  async stop() {
    if (!live.has(this)) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const st = await this.exited;
    clearTimeout(timer);
    return st;
  }
}

/** run runs a short command to completion and throws unless it exits 0. */
export async function run(name, bin, args, opts = {}) {
  const p = new Proc(name, bin, args, opts);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), startTimeout);
  const { code, signal } = await p.exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`${name} ${args.join(' ')}: exit code ${code} signal ${signal}; output:\n${p.tail()}`);
  }
  return p.output;
}
