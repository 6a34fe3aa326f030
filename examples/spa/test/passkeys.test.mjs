// Passkeys (WebAuthn) in the Apollo Client app, in headless Chromium against
// a real gatehouse: adding one on the account page, the list, signing in
// with it and no username, renaming and deleting it. The authenticator is
// Chromium's own virtual one (the DevTools protocol's WebAuthn domain: a
// CTAP2 platform authenticator with resident keys and user verification),
// so the browser runs the real ceremonies: the app's
// parse*OptionsFromJSON and toJSON(), and the server's checks of origin,
// RP ID, challenge and signature. Passkeys need a secure context and an
// origin within the RP ID (localhost), so the app and the API are both on
// http://localhost, on two ports; gatehouse allows the app's origin as a
// passkey origin because CORS_ORIGINS lists it (the default while the RP ID
// is localhost). Offline: a request to any host but the loopback is
// aborted and fails the test.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { graphql, launchChromium, serveStatic, spaDir, startGatehouse } from './lib/gatehouse.mjs';
import { offlinePage } from './lib/browser.mjs';

const shots = join(spaDir, 'screenshots');
const password = 'correct horse battery';

const deployments = [];
let browser, origin, api, gatehouse; // the main deployment's
const problems = []; // page errors, console errors, failed or outside requests

// deploy serves the built app on http://localhost:P and starts a gatehouse
// for it with env added; it returns the app's origin, the API's URL and
// the server. The app's port comes first, as gatehouse must know its
// origin; config.json, which names the API's port, is answered by a route
// set once gatehouse has picked it.
async function deploy(env = {}) {
  const routes = {};
  const app = await serveStatic(join(spaDir, 'dist'), routes);
  const d = { app, origin: app.origin.replace('127.0.0.1', 'localhost') };
  deployments.push(d);
  d.gatehouse = await startGatehouse({ CORS_ORIGINS: d.origin, ...env });
  d.api = d.gatehouse.api.replace('127.0.0.1', 'localhost');
  routes['/config.json'] = JSON.stringify({ graphqlURL: d.api });
  return d;
}

before(async () => {
  assert.ok(existsSync(join(spaDir, 'dist/index.html')), 'dist/ is missing: run "npm run build" first');
  mkdirSync(shots, { recursive: true });
  ({ origin, api, gatehouse } = await deploy());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const d of deployments) {
    await d.app.close();
    await d.gatehouse?.stop();
  }
});

// device opens the app in a fresh browser context with a virtual
// authenticator in its page, and returns the page, its DevTools session
// and the authenticator's id.
async function device(name, at = origin) {
  const { context, page } = await offlinePage(browser, name, problems);
  page.on('requestfailed', (req) => {
    if (new URL(req.url()).pathname === '/query') problems.push(`${name}: ${req.postDataJSON()?.operationName} failed: ${req.failure()?.errorText}`);
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  await page.goto(at);
  return { context, page, cdp, authenticatorId };
}

const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const loginForm = (page) => page.getByRole('form', { name: 'Sign in' });
const passkeys = (page) => page.getByRole('region', { name: 'Passkeys' });
const rows = (page) => passkeys(page).locator('tbody tr');
const signedInAs = (page, username) => page.getByTestId('username').filter({ hasText: username }).waitFor();
const alert = (scope, text) => scope.getByRole('alert').filter({ hasText: text }).waitFor();
const withPasskey = (page) => loginForm(page).getByRole('button', { name: 'Sign in with a passkey' }).click();

async function sessionCookie(context) {
  return (await context.cookies(api)).find((c) => c.name === 'gatehouse_session')?.value;
}

// asCookie posts one operation with a session cookie, as a browser would.
async function asCookie(cookie, query) {
  const res = await fetch(api, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Cookie: `gatehouse_session=${cookie}` },
    body: JSON.stringify({ query }),
  });
  return res.json();
}

test('passkeys: add one, sign in with it and no username, rename it, delete it', async (t) => {
  const started = Date.now();
  const { context, page, cdp, authenticatorId } = await device('laptop');
  const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  let signCount; // the authenticator's counter after the registration

  await t.test('before any passkey, the browser finds none: the form says so and stays', async () => {
    await withPasskey(page);
    await alert(loginForm(page), 'this device has no passkey for this site');
  });

  await t.test('sign up, then add a passkey named "work laptop": the list shows it, never used', async () => {
    await loginForm(page).getByLabel('Username').fill('erin');
    await loginForm(page).getByLabel('Password').fill(password);
    await loginForm(page).getByRole('button', { name: 'Sign up', exact: true }).click();
    await signedInAs(page, 'erin');
    await passkeys(page).getByText('No passkeys yet.').waitFor();
    const add = passkeys(page).getByRole('form', { name: 'Add a passkey' });
    await add.getByLabel('Name (optional)').fill('work laptop');
    await add.getByRole('button', { name: 'Add a passkey' }).click();
    await passkeys(page).getByRole('status').filter({ hasText: 'Passkey “work laptop” added.' }).waitFor();
    assert.equal(await rows(page).count(), 1);
    assert.deepEqual(await rows(page).first().locator('td').allInnerTexts().then((c) => [c[0], c[2]]),
      ['work laptop', 'never']);
    await shot(page, 'passkeys');
    // The authenticator made a discoverable credential for localhost, for
    // the user's id (the user handle), not the username.
    const made = await credentials();
    assert.equal(made.length, 1);
    assert.equal(made[0].rpId, 'localhost');
    assert.equal(made[0].isResidentCredential, true);
    const { me } = (await asCookie(await sessionCookie(context), '{ me { id } }')).data;
    assert.equal(Buffer.from(made[0].userHandle, 'base64').toString(), me.id);
    signCount = made[0].signCount;
  });

  await t.test('a second passkey on the same device is refused by the browser (excludeCredentials)', async () => {
    await passkeys(page).getByRole('form', { name: 'Add a passkey' }).getByRole('button', { name: 'Add a passkey' }).click();
    await alert(passkeys(page), 'This device already holds a passkey for your account.');
    assert.equal(await rows(page).count(), 1);
    assert.equal((await credentials()).length, 1);
  });

  await t.test('log out, then "Sign in with a passkey" with no username: signed in, with the factor PASSKEY', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await loginForm(page).waitFor();
    assert.equal(await loginForm(page).getByLabel('Username').inputValue(), '');
    await withPasskey(page);
    await signedInAs(page, 'erin');
    await page.locator('section[aria-label="Sessions"] tbody tr.current').getByText('with passkey', { exact: true }).waitFor();
    const { session } = (await asCookie(await sessionCookie(context), '{ session { factors secondFactorPending } }')).data;
    assert.deepEqual(session, { factors: ['PASSKEY'], secondFactorPending: false });
    assert.notEqual(await rows(page).first().locator('td').nth(2).innerText(), 'never', 'last used is set');
    assert.equal((await credentials())[0].signCount, signCount + 1, 'the authenticator signed once');
  });

  await t.test('rename it: the list shows the new name', async () => {
    await passkeys(page).getByRole('button', { name: 'Rename passkey work laptop' }).click();
    const form = passkeys(page).getByRole('form', { name: 'Rename passkey work laptop' });
    await form.getByLabel('New name').fill('  my phone ');
    await form.getByRole('button', { name: 'Save' }).click();
    await passkeys(page).getByRole('status').filter({ hasText: 'Passkey renamed.' }).waitFor();
    assert.equal(await rows(page).first().locator('.passkey-name').innerText(), 'my phone');
    const { passkeys: listed } = (await asCookie(await sessionCookie(context), '{ passkeys { name } }')).data;
    assert.deepEqual(listed, [{ name: 'my phone' }]);
  });

  await t.test('delete it: the list is empty; the device still holds it, but it no longer signs in', async () => {
    await passkeys(page).getByRole('button', { name: 'Delete passkey my phone' }).click();
    await passkeys(page).getByRole('status').filter({ hasText: 'Passkey “my phone” deleted.' }).waitFor();
    await passkeys(page).getByText('No passkeys yet.').waitFor();
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await loginForm(page).waitFor();
    assert.equal((await credentials()).length, 1, 'the virtual authenticator kept the credential');
    await withPasskey(page);
    await alert(loginForm(page), 'Passkey sign-in failed. This passkey may have been deleted from your account');
    await shot(page, 'passkey-sign-in-failed');
    assert.equal(await sessionCookie(context), undefined, 'no session');
    assert.equal(await page.getByRole('status').filter({ hasText: 'session has ended' }).count(), 0,
      'a refused sign-in is not a session that ended');
  });

  await t.test('the password still signs in; nothing left the loopback, no page errors', async () => {
    await loginForm(page).getByLabel('Username').fill('erin');
    await loginForm(page).getByLabel('Password').fill(password);
    await loginForm(page).getByRole('button', { name: 'Log in', exact: true }).click();
    await signedInAs(page, 'erin');
    assert.deepEqual(problems, []);
  });

  await context.close();
  t.diagnostic(`passkey flow took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test('beginPasskeyRegistration answers the options parseCreationOptionsFromJSON takes, for localhost', async () => {
  const { register } = await graphql(gatehouse.api,
    `mutation { register(username: "frank", password: "${password}") { token } }`);
  const res = await fetch(gatehouse.api, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${register.token}` },
    body: JSON.stringify({ query: 'mutation { beginPasskeyRegistration { challengeId options } }' }),
  });
  const { data } = await res.json();
  const { options } = data.beginPasskeyRegistration;
  // The shape PublicKeyCredential.parseCreationOptionsFromJSON takes:
  // the inner publicKey object, base64url strings, a discoverable
  // credential with user verification required.
  assert.equal(options.rp.id, 'localhost');
  assert.match(options.challenge, /^[A-Za-z0-9_-]{22,}$/);
  assert.match(options.user.id, /^[A-Za-z0-9_-]+$/);
  assert.equal(options.user.name, 'frank');
  assert.equal(options.authenticatorSelection.residentKey, 'required');
  assert.equal(options.authenticatorSelection.userVerification, 'required');
  assert.ok(options.pubKeyCredParams.some((p) => p.alg === -7), 'ES256 is offered');
});

test('a sign-in older than PASSKEY_REAUTH: the server\'s FORBIDDEN message, and "Sign in again" leads to the login form', async () => {
  // PASSKEY_REAUTH=1ms: every sign-in is already too old when the page asks.
  const stale = await deploy({ PASSKEY_REAUTH: '1ms' });
  const { context, page, cdp, authenticatorId } = await device('stale', stale.origin);
  await loginForm(page).getByLabel('Username').fill('grace');
  await loginForm(page).getByLabel('Password').fill(password);
  await loginForm(page).getByRole('button', { name: 'Sign up', exact: true }).click();
  await signedInAs(page, 'grace');
  await passkeys(page).getByRole('button', { name: 'Add a passkey' }).click();
  await alert(passkeys(page), 'Adding a passkey needs a recent sign-in: sign in again, then add it.');
  await shot(page, 'passkey-sign-in-again');
  assert.equal((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.length, 0,
    'the browser was never asked');
  await passkeys(page).getByRole('button', { name: 'Sign in again' }).click();
  await loginForm(page).getByRole('status').filter({ hasText: 'Sign in again, then add your passkey.' }).waitFor();
  assert.equal((await context.cookies(stale.api)).length, 0, 'signed out');
  assert.deepEqual(problems, []);
  await context.close();
});
