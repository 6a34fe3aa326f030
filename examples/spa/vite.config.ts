import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The app is static files; where the API lives is read at run time from
// config.json, so one build serves any deployment.
export default defineConfig({
  plugins: [react()],
  server: { host: 'localhost', port: 5173, strictPort: true },
  preview: { host: 'localhost', port: 4173, strictPort: true },
});
