// gatehouse's own playground page at / in headless Chromium, offline: every
// request to a host other than the loopback is aborted, and the test fails
// if the page tried one. GraphiQL and React come from the gatehouse binary
// (graph/playground/), so the page must load, run a query typed into its
// editor, and sign in through the cookie with nothing but the server.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { graphql, launchChromium, spaDir, startGatehouse } from './lib/gatehouse.mjs';

const password = 'correct horse battery';
const loopback = new Set(['127.0.0.1', 'localhost', '[::1]']);

let gatehouse, browser;

before(async () => {
  // The playground as `go run .` serves it: the cookie is Secure, so it is
  // __Host-gatehouse_session, which Chromium takes from http://127.0.0.1
  // (a potentially trustworthy origin, like localhost).
  gatehouse = await startGatehouse({ COOKIE_SECURE: 'true' });
  await graphql(gatehouse.api, 'mutation($u: String!, $p: String!) { register(username: $u, password: $p) { session { id } } }',
    { u: 'carol', p: password });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gatehouse?.stop();
});

test('the playground works offline: a typed query runs, sign-up and login sign in through the cookie', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  // Offline: only the loopback answers. Anything else is aborted and
  // recorded, so a page that reaches for a CDN fails here.
  const outside = [];
  const loaded = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (!loopback.has(url.hostname)) {
      outside.push(url.href);
      return route.abort('internetdisconnected');
    }
    loaded.push(url.pathname);
    return route.continue();
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // Chromium reports CSP refusals and SRI failures on the console too.
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  // Runs before the page's own scripts, outside its CSP.
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.cspViolations.push(`${e.effectiveDirective} refused ${e.blockedURI || 'inline'} ${e.sample}`.trim());
    });
  });

  const res = await page.goto(`${gatehouse.url}/`);
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self';/, 'the page is served with its CSP');
  // Only this server, data: URLs, and inline styles by nonce or hash.
  for (const directive of csp.split(';')) {
    const [name, ...sources] = directive.trim().split(/\s+/);
    for (const source of sources) {
      assert.ok(["'self'", "'none'", 'data:', "'unsafe-hashes'"].includes(source) || /^'(nonce|sha256)-[\w+/=]+'$/.test(source),
        `CSP ${name} allows ${source}`);
    }
  }

  // GraphiQL 4 edits queries in CodeMirror 5: type into the editor the
  // page shows, as a person would, and read the answer from the result pane.
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.waitFor({ timeout: 30_000 });
  const editorText = () => editor.evaluate((el) => el.CodeMirror.getValue());
  const resultText = () => page.locator('.graphiql-response .CodeMirror')
    .evaluate((el) => el.CodeMirror.getValue()).catch(() => '');

  // run types query on one line (the editor closes brackets and quotes
  // itself, and typing the closing one steps over it), runs it with
  // Ctrl-Enter or the run button, and returns the answer once it is shown.
  async function run(query, how) {
    const before = await resultText();
    await editor.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Delete');
    await page.keyboard.type(query);
    await page.keyboard.press('Escape'); // closes an autocompletion list
    assert.equal(await editorText(), query, 'the editor holds the typed query');
    if (how === 'button') await page.locator('.graphiql-execute-button').click();
    else await page.keyboard.press('ControlOrMeta+Enter');
    await page.waitForFunction((before) => {
      const el = document.querySelector('.graphiql-response .CodeMirror');
      const text = el?.CodeMirror.getValue() ?? '';
      return text.trim().startsWith('{') && text !== before;
    }, before, { timeout: 15_000 });
    return JSON.parse(await resultText());
  }

  await t.test('a query typed into the editor, run with Ctrl-Enter, is answered', async () => {
    const answer = await run('{ me { username } }', 'keys');
    assert.deepEqual(answer, { data: { me: null } }, 'signed out: no user');
  });

  await t.test('register in the editor signs in: me answers the new user', async () => {
    const answer = await run(`mutation { register(username: "dave", password: "${password}") { session { current } } }`, 'button');
    assert.equal(answer.data?.register.session.current, true, JSON.stringify(answer));
    const cookies = await context.cookies(gatehouse.url);
    assert.deepEqual(cookies.map((c) => [c.name, c.secure, c.httpOnly]), [['__Host-gatehouse_session', true, true]]);
    assert.deepEqual((await run('{ me { username } }', 'keys')).data, { me: { username: 'dave' } });
  });

  await t.test('login in the editor signs in as another user, by the cookie', async () => {
    const answer = await run(`mutation { login(username: "carol", password: "${password}") { session { current } } }`, 'keys');
    assert.equal(answer.data?.login.session.current, true, JSON.stringify(answer));
    // Newest first: this login, then the one register opened in before().
    assert.deepEqual((await run('{ me { username } sessions { current } }', 'button')).data,
      { me: { username: 'carol' }, sessions: [{ current: true }, { current: false }] });
    await page.screenshot({ path: join(spaDir, 'screenshots/playground.png') });
  });

  await t.test('GraphiQL\'s dialogs and CodeMirror\'s search run within the CSP', async () => {
    // The settings dialog locks the page's scroll with a <style> of its
    // own (allowed by nonce); CodeMirror's search box has style attributes
    // (allowed by hash). A refusal would show in the last subtest.
    await page.locator('button[aria-label="Open settings dialog"]').click();
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await editor.click();
    await page.keyboard.press('ControlOrMeta+F');
    await page.locator('.CodeMirror-dialog input').waitFor();
    await page.keyboard.press('Escape');
  });

  await t.test('nothing left the machine, nothing was refused', async () => {
    assert.deepEqual(outside, [], 'requests to other hosts');
    const assets = [...new Set(loaded.filter((p) => p.startsWith('/playground/')))].sort();
    assert.deepEqual(assets, [
      '/playground/graphiql.min.css',
      '/playground/graphiql.min.js',
      '/playground/playground.css',
      '/playground/playground.js',
      '/playground/react-dom.production.min.js',
      '/playground/react.production.min.js',
    ]);
    assert.deepEqual(await page.evaluate(() => window.cspViolations), [], 'CSP violations');
    assert.deepEqual(problems, []);

    // The detector itself works: a request the CSP forbids is reported.
    // (CSP refuses it before any connection is made.)
    await page.evaluate(() => fetch('http://127.0.0.2:9/').catch(() => {}));
    await page.waitForFunction(() => window.cspViolations.some((v) => v.startsWith('connect-src')));
  });

  await context.close();
});
