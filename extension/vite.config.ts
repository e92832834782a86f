import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * The extension pages (popup, confirmation window, onboarding): ES modules, Preact with the
 * automatic JSX runtime. The service worker and the content script are built separately as single
 * files by scripts/build.ts (a content script cannot be a module; the worker must not need chunks).
 */
export default defineConfig({
  root: here('.'),
  base: './',
  publicDir: here('public'),
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'chrome116',
    sourcemap: false,
    rollupOptions: {
      input: { popup: here('popup.html'), confirm: here('confirm.html'), onboarding: here('onboarding.html') },
    },
  },
});
