// Live sessions and the activity log in the Apollo Client app, in headless
// Chromium against a real gatehouse on another origin: the app subscribes
// to sessionEvents over a WebSocket (graphql-transport-ws, authenticated by
// the session cookie on the upgrade), so a session revoked on one device
// puts the sign-in form back on the other at once, with no action there;
// the account page lists the security log. Offline: a request to any host
// but the loopback is aborted and fails the test.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { graphql, launchChromium, serveStatic, spaDir, startGatehouse } from './lib/gatehouse.mjs';
import { loopback, offlinePage } from './lib/browser.mjs';

const shots = join(spaDir, 'screenshots');
const password = 'correct horse battery';

let browser, app, gatehouse;
const problems = []; // page errors, console errors, failed or outside requests

before(async () => {
  assert.ok(existsSync(join(spaDir, 'dist/index.html')), 'dist/ is missing: run "npm run build" first');
  mkdirSync(shots, { recursive: true });
  const routes = {};
  app = await serveStatic(join(spaDir, 'dist'), routes); // port A
  gatehouse = await startGatehouse({ CORS_ORIGINS: app.origin }); // port B
  routes['/config.json'] = JSON.stringify({ graphqlURL: gatehouse.api });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await app?.close();
  await gatehouse?.stop();
});

// device opens the app in a fresh browser context (its own cookie jar, as
// on another machine) and returns the context, the page, the API requests
// it sent over HTTP and the WebSockets it opened, each with its frames.
async function device(name, setup = async () => {}) {
  const { context, page } = await offlinePage(browser, name, problems, setup);
  const requests = [];
  page.on('request', (req) => {
    if (req.url() === gatehouse.api) requests.push({ at: Date.now(), operation: req.postDataJSON()?.operationName });
  });
  page.on('requestfailed', (req) => {
    if (req.url() === gatehouse.api) problems.push(`${name}: ${req.postDataJSON()?.operationName} failed: ${req.failure()?.errorText}`);
  });
  const sockets = [];
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), sent: [], received: [], closed: new Promise((ok) => ws.on('close', ok)) };
    if (!loopback.has(new URL(ws.url()).hostname)) problems.push(`${name}: WebSocket outside the loopback: ${ws.url()}`);
    ws.on('framesent', (f) => socket.sent.push(JSON.parse(f.payload)));
    ws.on('framereceived', (f) => socket.received.push(JSON.parse(f.payload)));
    sockets.push(socket);
  });
  await page.goto(app.origin);
  return { context, page, requests, sockets };
}

const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const loginForm = (page) => page.getByRole('form', { name: 'Sign in' });
const signedInAs = (page, username) => page.getByTestId('username').filter({ hasText: username }).waitFor();
const sessionRows = (page) => page.locator('section[aria-label="Sessions"] tbody tr');
const activityRows = (page) => page.locator('section[aria-label="Activity"] tbody tr');

async function signIn(page, button, username = 'dana') {
  await loginForm(page).getByLabel('Username').fill(username);
  await loginForm(page).getByLabel('Password').fill(password);
  await loginForm(page).getByRole('button', { name: button, exact: true }).click();
  await signedInAs(page, username);
}

// until polls check (which returns a truthy value when done) for up to 10 s.
async function until(what, check) {
  for (const deadline = Date.now() + 10_000; ; await new Promise((ok) => setTimeout(ok, 20))) {
    const done = await check();
    if (done) return done;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
  }
}

// The frames of the sessionEvents subscription a socket received.
const events = (socket) => socket.received.filter((m) => m.type === 'next').map((m) => m.payload.data.sessionEvents.type);

test('a session revoked on one device returns the other to the sign-in form at once; the activity log shows it', async (t) => {
  const a = await device('laptop');
  const b = await device('phone');

  await t.test('A signs up, B logs in as the same user: A\'s sessions list grows by itself (SIGNED_IN)', async () => {
    await signIn(a.page, 'Sign up');
    await until('A\'s socket', () => a.sockets.length === 1);
    await signIn(b.page, 'Log in');
    // A's socket was told, and A's page read its sessions again: nothing
    // was clicked in A.
    await until('two sessions in A\'s list', async () => (await sessionRows(a.page).count()) === 2);
    assert.deepEqual(events(a.sockets[0]), ['SIGNED_IN']);
    assert.equal(await activityRows(a.page).filter({ hasText: 'Signed in' }).count(), 2);
  });

  await t.test('B\'s socket is the API\'s URL with ws://, authenticated by the cookie alone', async () => {
    // B saves its session data: its own subscription hears DATA_UPDATED,
    // which proves it is live before A revokes it.
    const editor = b.page.getByRole('region', { name: 'Session data' });
    await editor.getByLabel('Session data (JSON)').fill('{"theme": "dark"}');
    await editor.getByRole('button', { name: 'Save data' }).click();
    await until('DATA_UPDATED on B\'s socket', () => b.sockets.length === 1 && events(b.sockets[0]).includes('DATA_UPDATED'));
    const [socket] = b.sockets;
    assert.equal(socket.url, gatehouse.api.replace(/^http:/, 'ws:'));
    const init = socket.sent.find((m) => m.type === 'connection_init');
    assert.ok(init, 'connection_init was sent');
    assert.equal(init.payload?.authorization, undefined, 'no token: the upgrade\'s cookie authenticates');
    assert.deepEqual(socket.sent.filter((m) => m.type === 'subscribe').map((m) => m.payload.operationName), ['SessionEvents']);
  });

  let latency;
  await t.test('A revokes B\'s session: B shows the sign-in form within 1 s, saying why, with no request of its own', async () => {
    const row = sessionRows(a.page).filter({ hasNotText: 'this device' });
    const id = await row.getAttribute('data-session-id');
    const before = b.requests.length;
    await row.getByRole('button', { name: `Revoke session ${id}` }).click();
    const clicked = Date.now();
    await loginForm(b.page).waitFor();
    latency = Date.now() - clicked;
    await loginForm(b.page).getByRole('status').filter({ hasText: 'This session was signed out from another device.' }).waitFor();
    t.diagnostic(`revocation reached the other device in ${latency} ms`);
    assert.ok(latency < 1000, `B's sign-in form took ${latency} ms (want < 1000)`);
    assert.deepEqual(b.requests.slice(before), [], 'B asked nothing over HTTP: the pushed event did it');
    assert.deepEqual(events(b.sockets[0]), ['DATA_UPDATED', 'REVOKED']);
    await shot(b.page, 'live-revoked');
    // The socket closes (the server completes the subscription and closes
    // it, or the app, leaving the page, gets there first); the app does not
    // reconnect (one socket, still, once A's checks are done).
    await b.sockets[0].closed;
  });

  await t.test('A\'s activity log: SESSION_REVOKED, then the two sign-ins, "this session" on A\'s own', async () => {
    const section = a.page.getByRole('region', { name: 'Activity' });
    await until('SESSION_REVOKED in A\'s activity', async () =>
      (await activityRows(a.page).first().getAttribute('data-event-type')) === 'SESSION_REVOKED');
    const types = await activityRows(a.page).evaluateAll((rows) => rows.map((r) => r.dataset.eventType));
    assert.deepEqual(types, ['SESSION_REVOKED', 'SIGNED_IN', 'SIGNED_IN']);
    const cells = await activityRows(a.page).first().locator('td').allInnerTexts();
    assert.equal(cells[0], 'Session revoked');
    assert.equal(cells[2], '127.0.0.1');
    assert.match(cells[3], /HeadlessChrome/);
    // Newest first: the last row is A's own sign-up.
    assert.equal(await section.getByText('this session', { exact: true }).count(), 1);
    assert.match(await activityRows(a.page).last().innerText(), /Signed in\s+this session/);
    assert.equal(await section.getByRole('button', { name: 'Load more' }).count(), 0, 'one page holds three events');
    await shot(a.page, 'live-activity');
    assert.equal(await sessionRows(a.page).count(), 1, 'A\'s list lost B\'s session');
  });

  await t.test('B opened one socket only, then signs in again with a new one; nothing left the loopback', async () => {
    assert.equal(b.sockets.length, 1, 'no reconnection after the session ended');
    await signIn(b.page, 'Log in');
    await until('B\'s new socket', () => b.sockets.length === 2);
    await until('B\'s new subscription', () => b.sockets[1].sent.some((m) => m.type === 'subscribe'));
    assert.equal(await loginForm(b.page).count(), 0);
    assert.equal(a.sockets.length, 1, 'A kept its socket throughout');
    assert.deepEqual(problems, []);
  });

  await a.context.close();
  await b.context.close();
});

test('without a socket (a proxy that drops WebSockets), a revoked session still ends at its next request', async () => {
  let refused = 0;
  const { context, page } = await device('no-socket', async (context) => {
    // Every socket is closed at once with 1013 (try again later), which
    // graphql-ws retries with a growing backoff: the app's subscription
    // never hears a thing, and gives up only long after this test.
    await context.routeWebSocket(/.*/, (ws) => {
      refused++;
      ws.close({ code: 1013, reason: 'no WebSockets here' });
    });
  });
  await signIn(page, 'Sign up', 'erin');
  await until('the refused socket', () => refused > 0);
  // Another session of erin's (a bearer token) revokes the browser's.
  const { login } = await graphql(gatehouse.api, `mutation { login(username: "erin", password: "${password}") { token } }`);
  const bearer = { Authorization: `Bearer ${login.token}` };
  const { sessions } = await graphql(gatehouse.api, '{ sessions { id current } }', {}, bearer);
  const browserSession = sessions.find((s) => !s.current);
  await graphql(gatehouse.api, 'mutation($id: ID!) { deleteSession(id: $id) }', { id: browserSession.id }, bearer);
  assert.equal(await page.getByTestId('username').count(), 1, 'no event: the page shows the account until it asks');
  await page.getByRole('button', { name: 'Refresh' }).click();
  await loginForm(page).getByRole('status').filter({ hasText: 'Your session has ended' }).waitFor();
  await context.close();
  assert.deepEqual(problems, []);
});

test('the activity log shows 20 events, and "Load more" the older ones after endCursor', async () => {
  await graphql(gatehouse.api, `mutation { register(username: "fay", password: "${password}") { token } }`);
  let token;
  for (let i = 0; i < 22; i++) {
    ({ login: { token } } = await graphql(gatehouse.api, `mutation { login(username: "fay", password: "${password}") { token } }`));
  }
  const { context, page } = await device('activity');
  await signIn(page, 'Log in', 'fay');
  const { securityEvents } = await graphql(gatehouse.api, '{ securityEvents(first: 100) { edges { node { id } } pageInfo { hasNextPage } } }',
    {}, { Authorization: `Bearer ${token}` });
  const all = securityEvents.edges.map((e) => e.node.id);
  assert.ok(all.length > 20 && !securityEvents.pageInfo.hasNextPage, `${all.length} events`);

  const section = page.getByRole('region', { name: 'Activity' });
  await until('the first page', async () => (await activityRows(page).count()) === 20);
  await section.getByRole('button', { name: 'Load more' }).click();
  await until('the second page', async () => (await activityRows(page).count()) === all.length);
  const shown = await activityRows(page).evaluateAll((rows) => rows.map((r) => r.dataset.eventId));
  assert.deepEqual(shown, all, 'the same events as the API\'s, in the same order');
  assert.equal(await section.getByRole('button', { name: 'Load more' }).count(), 0, 'nothing older');
  await context.close();
  assert.deepEqual(problems, []);
});
