import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * The dashboard's build: web/ -> dist/web/ (index.html + hashed assets), served by Ferry at `/`
 * (src/api/routes/dashboard-routes.ts). JSX goes through Vite's own transform (oxc) with Preact's
 * automatic runtime, so no framework plugin is needed. Nothing here runs at serve time.
 */
export default defineConfig({
  root: here,
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // One small bundle; no polyfill script injected into the HTML (the CSP refuses inline code).
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
});
