// Builds the unpacked extension into extension/dist: the pages (vite.config.ts), then the
// service worker (one ES module file) and the content script (one classic IIFE file).
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const outDir = here('../dist');

async function single(entry: string, fileName: string, format: 'es' | 'iife'): Promise<void> {
  await build({
    configFile: false,
    logLevel: 'warn',
    publicDir: false,
    build: {
      outDir,
      emptyOutDir: false,
      target: 'chrome116',
      minify: true,
      copyPublicDir: false,
      lib: { entry: here(entry), formats: [format], name: 'ObolContent', fileName: () => fileName },
    },
  });
}

await build({ configFile: here('../vite.config.ts') });
await single('../src/background/main.ts', 'background.js', 'es');
await single('../src/content/main.ts', 'content.js', 'iife');
for (const f of ['background.js', 'content.js', 'popup.html', 'manifest.json']) {
  console.log(`extension/dist/${f}  ${(statSync(`${outDir}/${f}`).size / 1024).toFixed(1)} KB`);
}
