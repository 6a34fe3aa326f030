// gatehouse's own playground page at / in headless Chromium. The page is
// gqlgen's GraphiQL: it loads React, ReactDOM and GraphiQL from
// cdn.jsdelivr.net with SRI hashes. There is no internet here, so the test
// answers those URLs with the same files from the npm packages in
// playground-cdn/ (same versions; the browser checks the SRI hashes, and so
// does the test, to say clearly which file differs). The page itself, its
// inline script and its Content-Security-Policy are the server's, untouched.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { graphql, launchChromium, spaDir, startGatehouse } from './lib/gatehouse.mjs';

const cdn = 'https://cdn.jsdelivr.net/npm/';
const requireCDN = createRequire(join(spaDir, 'playground-cdn/package.json'));
const password = 'correct horse battery';

// localFile maps https://cdn.jsdelivr.net/npm/<name>@<version>/<path> to that
// file of the installed package, refusing a version other than the page's.
function localFile(url) {
  const m = /^(@?[^@]+)@([^/]+)\/(.+)$/.exec(url.slice(cdn.length));
  assert.ok(m, `unexpected CDN URL ${url}`);
  const [, name, version, path] = m;
  const pkgJSON = requireCDN.resolve(`${name}/package.json`);
  const installed = JSON.parse(readFileSync(pkgJSON, 'utf8')).version;
  assert.equal(installed, version,
    `the page loads ${name}@${version} but playground-cdn/ has ${installed}: pin ${name}@${version} there`);
  return join(dirname(pkgJSON), path);
}

let gatehouse, browser, html;

before(async () => {
  // The playground as `go run .` serves it: the cookie is Secure, so it is
  // __Host-gatehouse_session, which Chromium takes from http://127.0.0.1
  // (a potentially trustworthy origin, like localhost).
  gatehouse = await startGatehouse({ COOKIE_SECURE: 'true' });
  await graphql(gatehouse.api, 'mutation($u: String!, $p: String!) { register(username: $u, password: $p) { session { id } } }',
    { u: 'carol', p: password });
  browser = await launchChromium();
  html = await (await fetch(`${gatehouse.url}/`)).text();
});

after(async () => {
  await browser?.close();
  await gatehouse?.stop();
});

test('the files served for the CDN URLs match the page\'s SRI hashes', () => {
  const assets = [...html.matchAll(/(?:src|href)="(https:\/\/cdn\.jsdelivr\.net\/[^"]+)"\s+integrity="([^"]+)"/g)];
  assert.ok(assets.length >= 4, `expected React, ReactDOM and GraphiQL's JS and CSS, found ${assets.length}`);
  for (const [, url, integrity] of assets) {
    const want = integrity.replaceAll('&#43;', '+');
    const [algo] = want.split('-');
    const got = `${algo}-${createHash(algo).update(readFileSync(localFile(url))).digest('base64')}`;
    assert.equal(got, want, `${url}: the local file's hash differs from the page's integrity attribute`);
  }
});

test('the playground loads, logs in and answers me', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
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
  const served = [];
  await page.route(`${cdn}**`, async (route) => {
    const url = route.request().url();
    let file;
    try {
      file = localFile(url);
    } catch (err) {
      problems.push(String(err));
      return route.abort();
    }
    served.push(url);
    await route.fulfill({
      status: 200,
      path: file,
      contentType: file.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8',
      // crossorigin="anonymous" makes these CORS requests, as jsDelivr answers them.
      headers: { 'Access-Control-Allow-Origin': '*' },
    });
  });

  const res = await page.goto(`${gatehouse.url}/`);
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self' https:\/\/cdn\.jsdelivr\.net 'sha256-/, 'the page is served with its CSP');

  // GraphiQL 4 edits queries in CodeMirror 5; drive it through the editor
  // the page shows, and read the answer from the result pane.
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.waitFor({ timeout: 15_000 });

  async function run(query, expect) {
    await editor.evaluate((el, q) => el.CodeMirror.setValue(q), query);
    await page.locator('.graphiql-execute-button').click();
    await page.waitForFunction((expect) => {
      const result = document.querySelector('.graphiql-response .CodeMirror');
      return result && result.CodeMirror.getValue().includes(expect);
    }, expect, { timeout: 10_000 });
    return JSON.parse(await page.locator('.graphiql-response .CodeMirror').evaluate((el) => el.CodeMirror.getValue()));
  }

  await t.test('login', async () => {
    const answer = await run(`mutation {\n  login(username: "carol", password: "${password}") {\n    session { id current }\n  }\n}`, '"current"');
    assert.equal(answer.data.login.session.current, true, JSON.stringify(answer));
    const cookies = await context.cookies(gatehouse.url);
    assert.equal(cookies.length, 1, 'the login set the session cookie');
    assert.equal(cookies[0].name, '__Host-gatehouse_session');
    assert.equal(cookies[0].secure, true);
  });

  await t.test('me, authenticated by the cookie', async () => {
    const answer = await run('query {\n  me { username }\n  sessions { current }\n}', '"username"');
    // Newest first: this login, then the one register opened in before().
    assert.deepEqual(answer.data, { me: { username: 'carol' }, sessions: [{ current: true }, { current: false }] });
    await page.screenshot({ path: join(spaDir, 'screenshots/playground.png') });
  });

  await t.test('nothing was refused: no CSP violation, no SRI failure, no error', async () => {
    assert.deepEqual([...new Set(served.map((u) => u.slice(cdn.length)))].sort(), [
      'graphiql@4.1.2/graphiql.min.css',
      'graphiql@4.1.2/graphiql.min.js',
      'react-dom@18.2.0/umd/react-dom.production.min.js',
      'react@18.2.0/umd/react.production.min.js',
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
