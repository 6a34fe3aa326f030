// Two-factor sign-in in the Apollo Client app, in headless Chromium against
// a real gatehouse on another origin: setting up an authenticator (TOTP,
// RFC 6238) from the account page, the second step of signing in with a
// code and with a recovery code, new recovery codes, and turning it off.
// The test is the authenticator app: it reads the secret from the page and
// computes the codes (lib/totp.mjs). gatehouse takes each 30-second step's
// code once per user, so a second code waits for the next step (at most
// 30 s, once); the other sign-ins use recovery codes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { graphql, launchChromium, serveStatic, spaDir, startGatehouse } from './lib/gatehouse.mjs';
import { offlinePage } from './lib/browser.mjs';
import { nextStep, step, totp } from './lib/totp.mjs';

const shots = join(spaDir, 'screenshots');
const password = 'correct horse battery';

let site, app, gatehouse, browser;
const apiCalls = []; // every API request a page sent, with its answer
const problems = []; // page errors, console errors, failed or outside requests

before(async () => {
  assert.ok(existsSync(join(spaDir, 'dist/index.html')), 'dist/ is missing: run "npm run build" first');
  mkdirSync(shots, { recursive: true });
  // Deployed as e2e.test.mjs does it: a copy of dist/ with a config.json
  // for the port gatehouse chose.
  site = mkdtempSync(join(tmpdir(), 'gatehouse-spa-'));
  cpSync(join(spaDir, 'dist'), site, { recursive: true });
  app = await serveStatic(site);
  gatehouse = await startGatehouse({ CORS_ORIGINS: app.origin });
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

// device opens the app in a fresh browser context (its own cookie jar),
// offline: a request to any host but the loopback is aborted and fails the
// test.
async function device(name) {
  const { context, page } = await offlinePage(browser, name, problems);
  page.on('requestfailed', (req) => {
    if (req.url().startsWith(gatehouse.api)) problems.push(`${name}: ${req.postDataJSON()?.operationName} failed: ${req.failure()?.errorText}`);
  });
  page.on('response', (res) => {
    if (!res.url().startsWith(gatehouse.api)) return;
    const req = res.request();
    apiCalls.push(res.text().catch((err) => `(body unreadable: ${err.message})`).then((body) => ({
      what: `${name}: ${req.postDataJSON()?.operationName}`, method: req.method(),
      contentType: req.headers()['content-type'], headers: res.headers(), body,
    })));
  });
  await page.goto(app.origin);
  return { context, page };
}

const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const loginForm = (page) => page.getByRole('form', { name: 'Sign in' });
const secondStep = (page) => page.getByRole('form', { name: 'Second factor' });
const twoFactor = (page) => page.getByRole('region', { name: 'Two-factor' });
const currentSession = (page) => page.locator('section[aria-label="Sessions"] tbody tr.current');

async function logIn(page, username, button = 'Log in') {
  const form = loginForm(page);
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: button, exact: true }).click();
}

async function logOut(page) {
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await loginForm(page).waitFor();
}

async function enterCode(page, code) {
  await secondStep(page).getByLabel('6-digit code or a recovery code').fill(code);
  await secondStep(page).getByRole('button', { name: 'Verify' }).click();
}

const signedInAs = (page, username) => page.getByTestId('username').filter({ hasText: username }).waitFor();
const alert = (scope, text) => scope.getByRole('alert').filter({ hasText: text }).waitFor();

// sessionCookie returns the value of gatehouse's cookie in a context, or undefined.
async function sessionCookie(context) {
  return (await context.cookies(gatehouse.url)).find((c) => c.name === 'gatehouse_session')?.value;
}

// asCookie posts one operation with a session cookie, as a browser would,
// and returns the whole answer, errors included.
async function asCookie(cookie, query) {
  const res = await fetch(gatehouse.api, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Cookie: `gatehouse_session=${cookie}` },
    body: JSON.stringify({ query }),
  });
  return res.json();
}

// A code no authenticator shows now: one from long ago.
const wrongCode = (secret) => totp(secret, step() - 1000);

test("the test's TOTP helper gives RFC 6238's codes", () => {
  // RFC 6238 appendix B, SHA1, the last 6 of its 8 digits; the secret is
  // "12345678901234567890" in base32.
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  const vectors = { 59: '287082', 1111111109: '081804', 1234567890: '005924', 2000000000: '279037' };
  for (const [t, want] of Object.entries(vectors)) assert.equal(totp(secret, step(Number(t) * 1000)), want, `T=${t}`);
});

test('two-factor sign-in: set up, sign in with a code and with a recovery code, new codes, turn off', async (t) => {
  const started = Date.now();
  const { context, page } = await device('laptop');
  let secret, usedStep, recoveryCodes;

  await t.test('sign up: two-factor is off', async () => {
    await loginForm(page).waitFor();
    await logIn(page, 'carol', 'Sign up');
    await signedInAs(page, 'carol');
    await twoFactor(page).getByText('Two-factor is off').waitFor();
  });

  await t.test('set up: the password again, a QR code as an image, the key, a code to confirm', async () => {
    const section = twoFactor(page);
    await section.getByRole('button', { name: 'Set up two-factor' }).click();
    const begin = section.getByRole('form', { name: 'Set up two-factor' });
    await begin.getByLabel('Your password').fill('not my password');
    await begin.getByRole('button', { name: 'Continue' }).click();
    await alert(begin, 'Current password is incorrect.'); // the server's refusal, on the form
    await begin.getByLabel('Your password').fill(password);
    await begin.getByRole('button', { name: 'Continue' }).click();

    const confirm = section.getByRole('form', { name: 'Confirm two-factor' });
    const qr = confirm.getByRole('img', { name: 'QR code for your authenticator app' });
    await qr.waitFor();
    // The server's SVG is an image (a data: URL), never markup in the page.
    const image = await qr.evaluate(async (img) => {
      await img.decode();
      return { src: img.src, width: img.naturalWidth, svgInPage: document.querySelectorAll('svg').length };
    });
    assert.match(image.src, /^data:image\/svg\+xml;charset=utf-8,/);
    assert.match(decodeURIComponent(image.src.slice(image.src.indexOf(',') + 1)), /<svg[\s>]/);
    assert.ok(image.width > 0, 'the QR code rendered');
    assert.equal(image.svgInPage, 0, 'no SVG element in the page itself');
    secret = await confirm.getByTestId('totp-secret').innerText();
    assert.match(secret, /^[A-Z2-7]{16,}$/, 'a base32 key without padding');
    assert.match(await confirm.getByRole('link', { name: /authenticator app/ }).getAttribute('href'),
      new RegExp(`^otpauth://totp/.*[?&]secret=${secret}`));
    await shot(page, 'two-factor-setup');

    usedStep = step();
    await confirm.getByLabel('Enter the 6-digit code').fill(totp(secret, usedStep));
    await confirm.getByRole('button', { name: 'Turn on' }).click();
  });

  await t.test('ten recovery codes, shown once', async () => {
    const list = page.getByTestId('recovery-codes');
    await list.waitFor();
    await page.getByText('Save these recovery codes now').waitFor();
    recoveryCodes = await list.locator('li').allInnerTexts();
    assert.equal(recoveryCodes.length, 10, recoveryCodes.join(' '));
    assert.equal(new Set(recoveryCodes).size, 10);
    await shot(page, 'recovery-codes');
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await twoFactor(page).getByText('Two-factor is on').waitFor();
    assert.equal(await page.getByTestId('recovery-codes-left').innerText(), '10');
    assert.equal(await list.count(), 0, 'the codes are gone from the page');
  });

  await t.test('log in: the password opens a pending session, and the second step asks for a code', async () => {
    await logOut(page);
    await logIn(page, 'carol');
    await secondStep(page).waitFor();
    await shot(page, 'second-factor');
    // What the app relies on: the pending cookie has no me, may read its
    // session, and is refused the rest with secondFactorRequired.
    const pending = await asCookie(await sessionCookie(context), '{ me { id } session { secondFactorPending } }');
    assert.deepEqual(pending, { data: { me: null, session: { secondFactorPending: true } } });
    const refused = await asCookie(await sessionCookie(context), '{ sessions { id } }');
    assert.equal(refused.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(refused));
    assert.equal(refused.errors[0].extensions.secondFactorRequired, true, JSON.stringify(refused));
  });

  await t.test('a reload while pending lands on the second step', async () => {
    await page.reload();
    await secondStep(page).waitFor();
    assert.equal(await loginForm(page).count(), 0);
  });

  await t.test("a wrong code is refused with the server's message; the session still waits", async () => {
    await enterCode(page, wrongCode(secret));
    await alert(secondStep(page), 'Invalid code.');
    await page.reload();
    await secondStep(page).waitFor();
  });

  await t.test('too many wrong codes: the second step says when to try again', async () => {
    // Another user, set up through the API: the throttle counts per user.
    const { register } = await graphql(gatehouse.api,
      `mutation { register(username: "dave", password: "${password}") { token } }`);
    const bearer = { Authorization: `Bearer ${register.token}` };
    const { beginTotpEnrollment: { secret: daveSecret } } = await graphql(gatehouse.api,
      'mutation ($p: String!) { beginTotpEnrollment(password: $p) { secret } }', { p: password }, bearer);
    await graphql(gatehouse.api, 'mutation ($c: String!) { confirmTotpEnrollment(code: $c) }',
      { c: totp(daveSecret) }, bearer);

    const { context: other, page: phone } = await device('phone');
    await loginForm(phone).waitFor();
    await logIn(phone, 'dave');
    await secondStep(phone).waitFor();
    let said = '';
    for (let i = 0; i < 10 && !/Too many attempts/.test(said); i++) {
      await enterCode(phone, wrongCode(daveSecret));
      await secondStep(phone).getByRole('alert').waitFor();
      said = await secondStep(phone).getByRole('alert').innerText();
      assert.ok(i < 9, `no TOO_MANY_REQUESTS after 10 wrong codes; last: ${said}`);
    }
    assert.match(said, /^Too many attempts: try again in \d+ s\.$/);
    await other.close();
  });

  await t.test("the authenticator's next code signs in, and the session cookie is a new one", async () => {
    const pendingCookie = await sessionCookie(context);
    usedStep = await nextStep(usedStep);
    await enterCode(page, totp(secret, usedStep));
    await signedInAs(page, 'carol');
    assert.notEqual(await sessionCookie(context), pendingCookie, 'verifySecondFactor rotated the token');
    await currentSession(page).filter({ hasText: 'with password + authenticator code' }).waitFor();
    const stale = await asCookie(pendingCookie, '{ me { id } session { id } }');
    assert.deepEqual(stale, { data: { me: null, session: null } }, 'the pending token stopped working');
  });

  await t.test('cancel on the second step ends the pending session', async () => {
    await logOut(page);
    await logIn(page, 'carol');
    await secondStep(page).getByRole('button', { name: 'Cancel' }).click();
    await loginForm(page).waitFor();
    assert.equal(await sessionCookie(context), undefined, 'the cookie is gone');
  });

  await t.test('a recovery code signs in, once: 9 are left', async () => {
    await logIn(page, 'carol');
    await enterCode(page, recoveryCodes[0]);
    await signedInAs(page, 'carol');
    assert.equal(await page.getByTestId('recovery-codes-left').innerText(), '9');
    await currentSession(page).filter({ hasText: 'with password + recovery code' }).waitFor();
  });

  await t.test('new recovery codes: shown once, and the old ones stop working', async () => {
    const section = twoFactor(page);
    await section.getByRole('button', { name: 'New recovery codes' }).click();
    const form = section.getByRole('form', { name: 'New recovery codes' });
    await form.getByLabel('Your password').fill(password);
    await form.getByLabel('6-digit code or a recovery code').fill(recoveryCodes[1]);
    await form.getByRole('button', { name: 'Make new recovery codes' }).click();
    await page.getByText('Save these recovery codes now').waitFor();
    const fresh = await page.getByTestId('recovery-codes').locator('li').allInnerTexts();
    assert.equal(fresh.length, 10);
    assert.deepEqual(fresh.filter((c) => recoveryCodes.includes(c)), []);
    await page.getByRole('button', { name: 'I have saved them' }).click();
    assert.equal(await page.getByTestId('recovery-codes-left').innerText(), '10');

    await section.getByRole('button', { name: 'Turn off' }).click();
    const off = section.getByRole('form', { name: 'Turn off two-factor' });
    await off.getByLabel('Your password').fill(password);
    await off.getByLabel('6-digit code or a recovery code').fill(recoveryCodes[2]);
    await off.getByRole('button', { name: 'Turn off two-factor' }).click();
    await alert(off, 'Code is incorrect, used already, or too old.');
    recoveryCodes = fresh;
  });

  await t.test('turn two-factor off: the password alone signs in again', async () => {
    const off = twoFactor(page).getByRole('form', { name: 'Turn off two-factor' });
    await off.getByLabel('Your password').fill(password);
    await off.getByLabel('6-digit code or a recovery code').fill(recoveryCodes[0]);
    await off.getByRole('button', { name: 'Turn off two-factor' }).click();
    await twoFactor(page).getByText('Two-factor is off').waitFor();
    await logOut(page);
    await logIn(page, 'carol');
    await signedInAs(page, 'carol');
    await currentSession(page).getByText('with password', { exact: true }).waitFor();
  });

  await t.test('every API request was a credentialed JSON POST, no token reached the page, nothing left the loopback', async () => {
    const calls = await Promise.all(apiCalls);
    assert.ok(calls.some((c) => c.what.endsWith('VerifySecondFactor')), 'the second step was sent');
    for (const { what, method, contentType, headers, body } of calls) {
      assert.equal(method, 'POST', what);
      assert.equal(contentType, 'application/json', what);
      assert.equal(headers['access-control-allow-origin'], app.origin, what);
      assert.equal(headers['access-control-allow-credentials'], 'true', what);
      assert.doesNotMatch(body, /"token"/, `${what}: a token reached the page`);
    }
    assert.deepEqual(problems, []);
  });

  await context.close();
  t.diagnostic(`two-factor flow took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
