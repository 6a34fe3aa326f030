import { defineConfig, type Plugin, type PreviewServer, type ViteDevServer } from 'vite';
import react from '@vitejs/plugin-react';

// runtimeConfig answers /config.json from $GATEHOUSE_API_URL in `npm run dev`
// and `npm run preview`, ahead of any config.json file. The built app reads
// that file at run time (src/config.ts), so one build serves any
// deployment and no tracked file is edited to point it elsewhere.
function runtimeConfig(): Plugin {
  const url = process.env.GATEHOUSE_API_URL;
  if (url && !/^https?:\/\/[^/]/.test(url)) {
    throw new Error(`GATEHOUSE_API_URL must be an http(s) URL such as http://localhost:8080/query, got ${url}`);
  }
  const serve = (server: ViteDevServer | PreviewServer) => {
    if (!url) return;
    server.middlewares.use('/config.json', (_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Cache-Control', 'no-store');
      res.end(JSON.stringify({ graphqlURL: url }));
    });
  };
  return { name: 'gatehouse-runtime-config', configureServer: serve, configurePreviewServer: serve };
}

// The ports are vite's --port (npm run dev -- --port 3000); strictPort
// makes a taken port an error rather than a silent move to another one,
// which CORS_ORIGINS would not list.
export default defineConfig({
  plugins: [react(), runtimeConfig()],
  server: { host: 'localhost', port: 5173, strictPort: true },
  preview: { host: 'localhost', port: 4173, strictPort: true },
});
