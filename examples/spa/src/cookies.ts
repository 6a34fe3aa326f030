/** A reason why the browser may have dropped gatehouse's session cookie. */
export interface LostCookieCause {
  /** likely is true when the app's and the API's addresses show this cause. */
  likely: boolean;
  text: string;
}

// site approximates a URL's site as browsers define it for SameSite:
// the scheme plus the registrable domain. Without the Public Suffix List it
// takes the last two labels of a name, so it tells localhost from 127.0.0.1
// and example.com from example.net, but not a.github.io from b.github.io
// (which the message then lists as a possible cause only).
function site(url: URL): string {
  const host = url.hostname;
  const ip = /^[\d.]+$/.test(host) || host.startsWith('[');
  return `${url.protocol}//${ip ? host : host.split('.').slice(-2).join('.')}`;
}

// loopback reports whether browsers treat host as potentially trustworthy
// over plain http, and so keep a Secure cookie from it.
function loopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '[::1]';
}

/**
 * lostCookieCauses says why a browser on appOrigin may have refused the
 * session cookie the API at graphqlURL set on sign-in, the likely causes
 * (those the two addresses show) first. It covers gatehouse's cookie rules:
 * SameSite=Lax, Secure under COOKIE_SECURE=true, and CORS with credentials.
 */
export function lostCookieCauses(appOrigin: string, graphqlURL: string): LostCookieCause[] {
  const app = new URL(appOrigin);
  const api = new URL(graphqlURL, appOrigin);
  const plainHTTP = api.protocol === 'http:' && !loopback(api.hostname);
  const causes: LostCookieCause[] = [
    {
      likely: site(app) !== site(api),
      text: `This app (${app.origin}) and the API (${api.origin}) must be the same site: the browser keeps ` +
        `gatehouse's SameSite=Lax cookie only for requests between pages of one site (the scheme and the ` +
        `domain count, ports do not; localhost and 127.0.0.1 are different sites). Serve both under one ` +
        `domain (app.example.com and api.example.com), or send the login token as an Authorization: Bearer ` +
        `header instead of using the cookie.`,
    },
    {
      likely: plainHTTP,
      text: `With COOKIE_SECURE=true (the default) the cookie is Secure, and a browser keeps it only from ` +
        `https or from localhost${plainHTTP ? `, not from plain http at ${api.host}` : ''}. Serve the API ` +
        `over https, or set COOKIE_SECURE=false while testing on plain http.`,
    },
    {
      likely: false,
      text: `Requests must carry credentials (Apollo's credentials: 'include'), and the API's CORS_ORIGINS ` +
        `must list this app's origin exactly, ${app.origin} (scheme, host and port, no path), so that the ` +
        `browser takes the cookie from its answers.`,
    },
  ];
  return [...causes.filter((c) => c.likely), ...causes.filter((c) => !c.likely)];
}
