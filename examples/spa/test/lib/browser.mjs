// A browser page for the app's tests, offline: the hosts it may reach, and
// a fresh context whose requests elsewhere, page errors and console errors
// are recorded as problems.

/** loopback are the only hosts a test's page may reach. */
export const loopback = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * offlinePage opens a fresh browser context (its own cookie jar, as on
 * another machine) and a page in it. A request to any host but the
 * loopback is aborted and pushed to problems as "NAME: request outside the
 * loopback", and so are the page's errors and console errors. setup runs
 * on the context before anything else.
 */
export async function offlinePage(browser, name, problems, setup = async () => {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await setup(context);
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (loopback.has(url.hostname)) return route.continue();
    problems.push(`${name}: request outside the loopback: ${url.href}`);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`${name}: page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${name}: console: ${msg.text()}`);
  });
  return { context, page };
}
