import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The widget ships as ONE classic script (IIFE), minified, so a shop adds a single
// `<script src="…/obol-widget.js" data-merchant="/obol" defer>`. It defines no global but
// `window.Obol` (set by the entry itself, so the IIFE has no exports and no name of its own).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // JSX elements through Preact's createElement, not preact/jsx-runtime's own factory (src/jsxRuntime.ts).
  resolve: { alias: { 'preact/jsx-runtime': fileURLToPath(new URL('src/jsxRuntime.ts', import.meta.url)) } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    minify: true,
    sourcemap: false,
    lib: { entry: 'src/index.ts', formats: ['iife'], name: 'ObolWidget', fileName: () => 'obol-widget.js' },
    rolldownOptions: {
      treeshake: {
        // protocol/ is side-effect free, and its TypeBox schema builders (`Type.Object(…)`) are
        // pure: the widget uses only constants and plain checks from bridge.ts, money.ts and
        // errors.ts, so TypeBox (≈90 KB, with a code generator) must not reach the page.
        manualPureFunctions: ['Type'],
        moduleSideEffects: (id: string) => !/[\\/](typebox|protocol[\\/]src)[\\/]/.test(id),
      },
    },
  },
});
