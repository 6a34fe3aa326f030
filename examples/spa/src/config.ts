/** defaultGraphqlURL is where the app looks for gatehouse without a config.json. */
export const defaultGraphqlURL = 'http://localhost:8080/query';

/**
 * loadConfig reads the runtime config.json next to index.html, so one build
 * serves any deployment: { "graphqlURL": "https://auth.example.com/query" }.
 * `npm run dev` and `npm run preview` answer it from $GATEHOUSE_API_URL
 * (vite.config.ts); a deployment writes it next to the built files
 * (`npm run config -- URL`). Without the file (a 404, or a static host's
 * fallback to index.html) the app uses defaultGraphqlURL; a file that is
 * there but wrong is an error, never silently replaced by the default.
 */
export async function loadConfig(): Promise<{ graphqlURL: string }> {
  const res = await fetch(new URL('config.json', document.baseURI), { cache: 'no-store' });
  if (!res.ok || !res.headers.get('Content-Type')?.includes('json')) {
    return { graphqlURL: defaultGraphqlURL };
  }
  const config: unknown = await res.json();
  const url = (config as { graphqlURL?: unknown } | null)?.graphqlURL;
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
    throw new Error(`config.json needs {"graphqlURL": "http(s)://…/query"}, got ${JSON.stringify(config)}`);
  }
  return { graphqlURL: url };
}
