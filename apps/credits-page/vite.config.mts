import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Builds the credits page into apps/credits-page/dist (npm run build:page): index.html for the iframe, served by the
 * ledger at /portal/, and tally-elements.js, the two custom elements for a product's own page (a stable name, so
 * products can point a script tag at it). `base: './'` keeps every asset URL relative to wherever it is served.
 */
export default defineConfig({
  root: here('.'),
  base: './',
  resolve: { alias: { '@tally/money': here('../../libs/money/src/index.ts') } },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: {
      input: { index: here('index.html'), elements: here('src/index.ts') },
      // The elements bundle keeps its exports (a page can import the classes); the iframe page has none.
      preserveEntrySignatures: 'exports-only',
      output: {
        entryFileNames: (chunk) => (chunk.name === 'elements' ? 'tally-elements.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
  server: {
    // `npx vite --config apps/credits-page/vite.config.mts`: the page against a ledger from scripts/up.sh.
    proxy: { '/v1': 'http://127.0.0.1:3002' },
  },
});
