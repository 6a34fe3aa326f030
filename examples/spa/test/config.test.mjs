// Where the built app finds gatehouse, and what it says when the browser
// drops the session cookie: `vite preview` of the one build, pointed at a
// gatehouse on a port chosen now through $GATEHOUSE_API_URL (the runtime
// config.json, no rebuild), in headless Chromium.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromiumPath, launchChromium, serveStatic, spaDir, startGatehouse } from './lib/gatehouse.mjs';

const password = 'correct horse battery';
const children = [];
let gatehouse, browser;

// freePort returns a loopback port that was free a moment ago.
async function freePort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

// preview serves dist/ with `vite preview --port <port>`, as `npm run
// preview -- --port <port>` does, with env added, and returns its origin.
async function preview(port, env) {
  const child = spawn(process.execPath, [join(spaDir, 'node_modules/vite/bin/vite.js'), 'preview', '--port', String(port)],
    { cwd: spaDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let logs = '';
  child.stdout.on('data', (chunk) => { logs += chunk; });
  child.stderr.on('data', (chunk) => { logs += chunk; });
  const origin = `http://localhost:${port}`;
  for (const deadline = Date.now() + 60_000; ;) {
    if (child.exitCode !== null) throw new Error(`vite preview exited with ${child.exitCode}:\n${logs}`);
    if (Date.now() > deadline) throw new Error(`vite preview did not answer on ${origin} within 60 s:\n${logs}`);
    const ok = await fetch(origin).then((res) => res.ok, () => false);
    if (ok) return origin;
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

let sameSite, crossSite; // two previews of the same build, one API
before(async () => {
  assert.ok(existsSync(join(spaDir, 'dist/index.html')), 'dist/ is missing: run "npm run build" first');
  mkdirSync(join(spaDir, 'screenshots'), { recursive: true });
  const [p1, p2] = [await freePort(), await freePort()];
  // Both app origins are listed: CORS passes for both, so only the cookie
  // rules tell them apart.
  gatehouse = await startGatehouse({ CORS_ORIGINS: `http://localhost:${p1},http://localhost:${p2}` });
  const port = new URL(gatehouse.url).port;
  sameSite = await preview(p1, { GATEHOUSE_API_URL: `http://localhost:${port}/query` });
  crossSite = await preview(p2, { GATEHOUSE_API_URL: `http://127.0.0.1:${port}/query` });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const child of children) child.kill('SIGTERM');
  await gatehouse?.stop();
});

async function signUp(page, username) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up', exact: true }).click();
}

const cookieAlert = (page) => page.getByRole('alert', { name: 'Session cookie refused' });

test('same site (localhost, two ports): GATEHOUSE_API_URL points the build at the API; the session survives a reload', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const config = page.waitForResponse((res) => res.url().endsWith('/config.json'));
  await page.goto(sameSite);
  assert.deepEqual(await (await config).json(), { graphqlURL: `${gatehouse.url.replace('127.0.0.1', 'localhost')}/query` });
  await signUp(page, 'carol');
  await page.getByTestId('username').filter({ hasText: 'carol' }).waitFor();
  await page.reload();
  await page.getByTestId('username').filter({ hasText: 'carol' }).waitFor();
  assert.equal(await cookieAlert(page).count(), 0);
  await context.close();
});

test('different sites (localhost and 127.0.0.1): the app says the cookie was refused, and why', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(crossSite);
  const login = page.waitForResponse((res) => res.request().postDataJSON()?.operationName === 'SignUp');
  await signUp(page, 'dave');
  // The server signed dave in; the browser kept no cookie from it.
  const answer = await (await login).json();
  assert.ok(answer.data?.register?.session?.id, JSON.stringify(answer));
  const alert = cookieAlert(page);
  await alert.waitFor();
  const text = await alert.innerText();
  const api = gatehouse.url; // http://127.0.0.1:port
  assert.match(text, /did not keep the session cookie/);
  assert.ok(text.includes(`Likely: This app (${crossSite}) and the API (${api}) must be the same site`), text);
  assert.match(text, /COOKIE_SECURE/);
  assert.ok(text.includes(`CORS_ORIGINS must list this app's origin exactly, ${crossSite}`), text);
  assert.equal(await page.getByTestId('username').count(), 0, 'not shown as signed in');
  assert.deepEqual(await context.cookies(api), []);
  await page.screenshot({ path: join(spaDir, 'screenshots/cookie-refused.png'), fullPage: true });
  await context.close();
});

test('without config.json the app calls http://localhost:8080/query; a wrong one is an error', async (t) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await t.test('404: the default', async () => {
    await page.route(`${sameSite}/config.json`, (route) => route.fulfill({ status: 404, body: 'not found' }));
    const called = [];
    // Answered here, so the test needs nothing on port 8080.
    await page.route('http://localhost:8080/**', (route) => {
      called.push(`${route.request().method()} ${route.request().url()}`);
      route.fulfill({
        contentType: 'application/json', body: '{"data":{"me":null}}',
        headers: { 'Access-Control-Allow-Origin': sameSite, 'Access-Control-Allow-Credentials': 'true',
          'Access-Control-Allow-Headers': 'content-type' },
      });
    });
    await page.goto(sameSite);
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    assert.ok(called.includes('POST http://localhost:8080/query'), called.join('\n'));
    await page.unrouteAll();
  });
  await t.test('no URL in it: an error naming the file', async () => {
    await page.route(`${sameSite}/config.json`, (route) => route.fulfill({ json: { url: 'x' } }));
    await page.goto(sameSite);
    await page.getByRole('alert').filter({ hasText: 'Cannot read config.json' }).waitFor();
  });
  await context.close();
});

test('plain http at a host other than localhost: the app names COOKIE_SECURE', async () => {
  // app.gatehouse.test and api.gatehouse.test are one site, both resolved
  // to 127.0.0.1 by this browser alone, and neither is localhost: the
  // Secure cookie of COOKIE_SECURE=true is refused over plain http.
  const { chromium } = await import('playwright-core');
  const named = await chromium.launch({
    executablePath: chromiumPath, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--host-resolver-rules=MAP *.gatehouse.test 127.0.0.1'],
  });
  const routes = {};
  const app = await serveStatic(join(spaDir, 'dist'), routes);
  const origin = app.origin.replace('127.0.0.1', 'app.gatehouse.test');
  const secure = await startGatehouse({ COOKIE_SECURE: 'true', CORS_ORIGINS: origin });
  const api = secure.url.replace('127.0.0.1', 'api.gatehouse.test');
  routes['/config.json'] = JSON.stringify({ graphqlURL: `${api}/query` });
  try {
    const page = await named.newPage();
    await page.goto(origin);
    const login = page.waitForResponse((res) => res.request().postDataJSON()?.operationName === 'SignUp');
    await signUp(page, 'erin');
    assert.match(await (await login).headerValue('set-cookie') ?? '', /^__Host-gatehouse_session=.*; Secure/);
    const alert = cookieAlert(page);
    await alert.waitFor();
    const causes = await alert.getByRole('listitem').allInnerTexts();
    assert.ok(causes[0].startsWith('Likely: With COOKIE_SECURE=true'), causes.join('\n'));
    assert.ok(causes[0].includes(`not from plain http at ${new URL(api).host}`), causes[0]);
    assert.equal(causes.filter((c) => c.startsWith('Likely')).length, 1, 'one site: only Secure is likely');
  } finally {
    await named.close();
    await app.close();
    await secure.stop();
  }
});
