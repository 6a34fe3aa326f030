// Helpers shared by the tests and the codegen script: build and start a real
// gatehouse, serve the built app from another origin, launch Debian's
// Chromium through playwright-core.
import { spawn, execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const spaDir = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const repoRoot = resolve(spaDir, '../..');

/**
 * gatehouseBinary returns the path of a gatehouse binary: $GATEHOUSE_BIN when
 * set (ci.sh builds it once), otherwise one built now with
 * `go build -o <tmp> .` from the repository root.
 */
export function gatehouseBinary() {
  if (process.env.GATEHOUSE_BIN) return process.env.GATEHOUSE_BIN;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bin-'));
  const bin = join(dir, 'gatehouse');
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: repoRoot, stdio: 'inherit' });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return bin;
}

/**
 * startGatehouse starts gatehouse on a free loopback port with a fresh
 * DATA_DIR and returns { url, api, stop, logs }. env adds settings
 * (CORS_ORIGINS, ...); BCRYPT_COST=4 and COOKIE_SECURE=false by default.
 */
export async function startGatehouse(env = {}) {
  const bin = gatehouseBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-data-'));
  const child = spawn(bin, [], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      BCRYPT_COST: '4',
      COOKIE_SECURE: 'false',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`gatehouse did not start within 60 s:\n${logs}`)), 60_000);
    const onData = (chunk) => {
      logs += chunk;
      // Text or JSON logs: the start line carries the bound address.
      const m = /gatehouse listening.*?"?addr"?[=:]"?(http:\/\/[^\s"]+)/.exec(logs);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`gatehouse exited with ${code}:\n${logs}`));
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise((ok) => child.on('exit', ok));
  return {
    url,
    api: `${url}/query`,
    logs: () => logs,
    // stop ends gatehouse and fails if it reported a data race (a binary
    // built with -race, as ci.sh builds it).
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
      if (logs.includes('WARNING: DATA RACE')) throw new Error(`gatehouse reported a data race:\n${logs}`);
    },
  };
}

/** graphql posts one operation to api the way a non-browser client would. */
export async function graphql(api, query, variables = {}, headers = {}) {
  const res = await fetch(api, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * serveStatic serves dir on a free loopback port, as any static host would
 * serve the built app, with routes overriding single paths (the runtime
 * config.json). Unknown paths fall back to index.html. Returns { origin, close }.
 */
export async function serveStatic(dir, routes = {}) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (routes[path] !== undefined) {
      res.writeHead(200, { 'Content-Type': types[extname(path)] ?? 'application/octet-stream' });
      res.end(routes[path]);
      return;
    }
    let file = normalize(join(root, path));
    if (!file.startsWith(root + sep) || !existsSync(file) || statSync(file).isDirectory()) {
      file = join(root, 'index.html');
    }
    res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(ok); }),
  };
}


export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * launchChromium starts Debian's Chromium headless through playwright-core
 * (which cannot download a browser here). It fails, never skips, when the
 * browser is missing. Playwright gives every launch a fresh, empty profile
 * directory of its own.
 */
export async function launchChromium() {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium not found at ${chromiumPath}: install Debian's chromium package ` +
      '(apt-get install -y chromium) or set CHROMIUM_PATH; the browser tests cannot run without it');
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
