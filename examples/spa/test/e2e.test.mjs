// The Apollo Client app in headless Chromium against a real gatehouse on
// another origin: the session cookie, CORS with credentials and the CSRF
// rule all take part for real.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium, serveStatic, spaDir, startGatehouse } from './lib/gatehouse.mjs';

const shots = join(spaDir, 'screenshots');
const dist = join(spaDir, 'dist');
const password = 'correct horse battery';

let site, app, gatehouse, browser;
const apiCalls = []; // every API request either device sent, with its answer
const problems = []; // page errors and failed API requests

before(async () => {
  assert.ok(existsSync(join(dist, 'index.html')), 'dist/ is missing: run "npm run build" first');
  mkdirSync(shots, { recursive: true });
  // Deployed as docs/spa.md says: the built files, copied as they are, and
  // a config.json written next to them by `npm run config` for the API on
  // the port gatehouse chose just now.
  site = mkdtempSync(join(tmpdir(), 'gatehouse-spa-'));
  cpSync(dist, site, { recursive: true });
  app = await serveStatic(site); // port A
  gatehouse = await startGatehouse({ CORS_ORIGINS: app.origin }); // port B
  execFileSync('npm', ['run', '--silent', 'config', '--', gatehouse.api, '--out', join(site, 'config.json')],
    { cwd: spaDir, stdio: ['ignore', 'ignore', 'inherit'] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await app?.close();
  await gatehouse?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

// device opens the app in a fresh browser context: its own cookie jar,
// storage and cache, as on another machine.
async function device(name, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, ...options });
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`${name}: page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${name}: console: ${msg.text()}`);
  });
  page.inflight = 0;
  page.on('request', (req) => { if (req.url().startsWith(gatehouse.api)) page.inflight++; });
  page.on('requestfinished', (req) => { if (req.url().startsWith(gatehouse.api)) page.inflight--; });
  page.on('requestfailed', (req) => { if (req.url().startsWith(gatehouse.api)) page.inflight--; });
  page.on('response', (res) => {
    if (!res.url().startsWith(gatehouse.api)) return;
    const req = res.request();
    // Read the body now: it is gone once the page navigates.
    apiCalls.push(res.text().catch((err) => `(body unreadable: ${err.message})`).then((body) => ({
      what: `${name}: ${req.method()} ${req.postDataJSON()?.operationName}`,
      method: req.method(), contentType: req.headers()['content-type'],
      status: res.status(), headers: res.headers(), body,
    })));
  });
  page.on('requestfailed', (req) => problems.push(`${name}: ${req.method()} ${req.url()} ${req.postDataJSON()?.operationName ?? ''} failed: ${req.failure()?.errorText}`));
  await page.goto(app.origin);
  return { context, page };
}

// settle waits until the page has had no API request in flight for
// 200 ms and every answer has been read, so a navigation cancels nothing
// the app started. The quiet spell matters: an answer can make the app send
// another request a moment later (after a logout, Apollo refetches Me).
async function settle(page) {
  for (let quiet = 0; quiet < 200; quiet += 20) {
    await new Promise((ok) => setTimeout(ok, 20));
    if (page.inflight > 0) quiet = -20;
  }
  await Promise.all(apiCalls);
}

const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const form = (page) => page.getByRole('form', { name: 'Sign in' });
const sessionRows = (page) => page.locator('section[aria-label="Sessions"] tbody tr');

async function submitLogin(page, username, button) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: button, exact: true }).click();
}

async function signedInAs(page, username) {
  await page.getByTestId('username').filter({ hasText: username }).waitFor();
}

async function rows(page, n) {
  await page.waitForFunction(
    (n) => document.querySelectorAll('section[aria-label="Sessions"] tbody tr').length === n, n);
}

async function status(page, text) {
  await page.getByRole('status').filter({ hasText: text }).waitFor();
}

test('a user manages their sessions from two devices', async (t) => {
  const { context: laptop, page } = await device('laptop');
  let phone, phonePage;

  await t.test('a wrong password is refused on the form', async () => {
    await form(page).waitFor();
    await submitLogin(page, 'alice', 'Log in');
    await page.getByRole('alert').filter({ hasText: 'Invalid username or password' }).waitFor();
    await shot(page, 'login-refused');
  });

  await t.test('sign up', async () => {
    await submitLogin(page, 'alice', 'Sign up');
    await signedInAs(page, 'alice');
    await rows(page, 1);
  });

  await t.test('the cookie is HttpOnly and nothing is kept in JavaScript storage', async () => {
    const cookies = await laptop.cookies(gatehouse.url);
    assert.equal(cookies.length, 1, JSON.stringify(cookies));
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, 'Lax');
    const seen = await page.evaluate(() => ({
      cookie: document.cookie, local: localStorage.length, session: sessionStorage.length,
    }));
    assert.deepEqual(seen, { cookie: '', local: 0, session: 0 });
  });

  await t.test('log out and log in again', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await form(page).waitFor();
    assert.deepEqual(await laptop.cookies(gatehouse.url), [], 'logout clears the cookie');
    await submitLogin(page, 'alice', 'Log in');
    await signedInAs(page, 'alice');
  });

  await t.test('the session list shows this device', async () => {
    await rows(page, 1);
    const row = sessionRows(page).first();
    assert.match(await row.innerText(), /this device/);
    assert.equal(await row.getByRole('button', { name: /Revoke/ }).count(), 0, 'no revoke button on the current session');
  });

  await t.test('a second device logs in', async () => {
    // A different User-Agent only so that the two devices can be told apart
    // in the list (and in the screenshot).
    ({ context: phone, page: phonePage } = await device('phone', {
      userAgent: 'Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36',
      viewport: { width: 420, height: 800 },
    }));
    await form(phonePage).waitFor();
    await submitLogin(phonePage, 'alice', 'Log in');
    await signedInAs(phonePage, 'alice');
    await rows(phonePage, 2);

    await page.getByRole('button', { name: 'Refresh' }).click();
    await rows(page, 2);
    assert.match(await sessionRows(page).nth(0).innerText(), /Android/, 'newest first: the phone');
    assert.match(await sessionRows(page).nth(1).innerText(), /this device/);
    await shot(page, 'sessions');
  });

  await t.test('the first device revokes the second, which returns to the login form by itself', async () => {
    await sessionRows(page).nth(0).getByRole('button', { name: /Revoke/ }).click();
    await status(page, 'Session revoked.');
    await rows(page, 1);

    // Told over its WebSocket (sessionEvents: REVOKED); test/live.test.mjs
    // times it.
    await form(phonePage).waitFor();
    await status(phonePage, 'This session was signed out from another device.');
    await shot(phonePage, 'revoked-device');
  });

  await t.test('log out everywhere else', async () => {
    await submitLogin(phonePage, 'alice', 'Log in');
    await signedInAs(phonePage, 'alice');
    await page.getByRole('button', { name: 'Refresh' }).click();
    await rows(page, 2);
    await page.getByRole('button', { name: 'Log out everywhere else' }).click();
    await status(page, 'Logged out 1 other session.');
    await rows(page, 1);

    await form(phonePage).waitFor();
    await status(phonePage, 'This session was signed out from another device.');
  });

  await t.test('edit the session data', async () => {
    const editor = page.getByLabel('Session data (JSON)');
    assert.deepEqual(JSON.parse(await editor.inputValue()), {});
    await editor.fill('{"$where": 1}');
    await page.getByRole('button', { name: 'Save data' }).click();
    await page.getByRole('alert').filter({ hasText: /\$/ }).waitFor(); // BAD_USER_INPUT, said by the server
    await editor.fill('{"theme": "dark", "cart": [1, 2, 3]}');
    await page.getByRole('button', { name: 'Save data' }).click();
    await status(page, 'Saved.');
    await shot(page, 'data-saved');

    await settle(page);
    await page.reload(); // the data lives on the server, with the session
    await signedInAs(page, 'alice');
    assert.deepEqual(JSON.parse(await page.getByLabel('Session data (JSON)').inputValue()),
      { theme: 'dark', cart: [1, 2, 3] });
  });

  await t.test('log out', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await form(page).waitFor();
    await settle(page);
    await page.reload();
    await form(page).waitFor();
    await shot(page, 'logged-out');
  });

  await t.test('every API request was a credentialed JSON POST that passed CORS and CSRF checks', async () => {
    await settle(page);
    await settle(phonePage);
    const calls = await Promise.all(apiCalls);
    assert.ok(calls.length > 10, `only ${calls.length} API requests seen`);
    for (const { what, method, contentType, status, headers, body } of calls) {
      assert.equal(method, 'POST', what);
      assert.equal(contentType, 'application/json', what);
      // 200, or a 4xx request error where the server speaks
      // application/graphql-response+json (GraphQL over HTTP), which Apollo
      // Client asks for first.
      const spec = headers['content-type']?.startsWith('application/graphql-response+json');
      assert.ok(status === 200 || (spec && status >= 400 && status < 500), `${what}: HTTP ${status}`);
      assert.equal(headers['access-control-allow-origin'], app.origin, what);
      assert.equal(headers['access-control-allow-credentials'], 'true', what);
      assert.match(body, /^\{"(data|errors)"/, what);
      assert.doesNotMatch(body, /"token"/, `${what}: a token reached the page`);
      assert.doesNotMatch(body, /BAD_REQUEST/, `${what}: refused`);
    }
    assert.deepEqual(problems, []);
  });

  await phone?.close();
  await laptop.close();
});
