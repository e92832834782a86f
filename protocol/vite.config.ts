import { defineConfig } from 'vite';

// Builds protocol/ as a browser ES module: proof at build time that the core bundles for the
// browser with no Node built-ins, and the size it adds to a page (Vite prints the gzip size).
export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    lib: { entry: { protocol: 'src/index.ts', pki: 'src/pki.ts' }, formats: ['es'] },
    rollupOptions: { external: [] },
  },
});
