// Compiles the `obol` command and the demo world into plain JavaScript (backend/dist), so a
// command starts without compiling TypeScript first. One bundle per entry with our own code
// (backend/src and protocol/src) inside and every npm package left as an import.
//
// Files the code reads beside itself (SQL migrations, the widget and extension builds) are found
// with `new URL('<relative>', import.meta.url)`. In a bundle, import.meta.url is the bundle's
// address, so each such relative path is rewritten to point from dist/ to the same file as from
// its source file: the bundle reads the migrations from backend/src, never a stale copy.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const backend = fileURLToPath(new URL('..', import.meta.url));
const outdir = resolve(backend, 'dist');
const SIBLING_URL = /new URL\((['"])(\.{1,2}\/[^'"]*)\1,\s*import\.meta\.url\)/g;

const siblingFiles = {
  name: 'sibling-files',
  setup(b) {
    b.onLoad({ filter: /\/(backend|protocol)\/src\/.*\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const contents = source.replace(SIBLING_URL, (_all, quote, rel) => {
        const target = resolve(dirname(args.path), rel);
        let fromDist = relative(outdir, target).split('\\').join('/');
        if (!fromDist.startsWith('.')) fromDist = `./${fromDist}`;
        if (rel.endsWith('/') && !fromDist.endsWith('/')) fromDist += '/';
        return `new URL(${quote}${fromDist}${quote}, import.meta.url)`;
      });
      return { contents, loader: 'ts' };
    });
  },
};

await build({
  entryPoints: { cli: resolve(backend, 'src/cli.ts'), demo: resolve(backend, 'src/demo/main.ts') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // npm packages stay imports (resolved from node_modules at run time); our workspaces are bundled.
  packages: 'external',
  plugins: [siblingFiles, workspaceProtocol()],
  sourcemap: 'linked',
  logLevel: 'warning',
  // Shared chunks sit beside the entries: the rewritten relative paths hold for every file in dist/.
  chunkNames: 'shared-[hash]',
});

/** `@obol/protocol/*` is our own TypeScript: bundle it instead of leaving it an import. */
function workspaceProtocol() {
  const protocolSrc = resolve(backend, '../protocol/src');
  return {
    name: 'workspace-protocol',
    setup(b) {
      b.onResolve({ filter: /^@obol\/protocol(\/.*)?$/ }, (args) => {
        const sub = args.path.slice('@obol/protocol'.length);
        return { path: sub === '' ? resolve(protocolSrc, 'index.ts') : resolve(protocolSrc, `${sub.slice(1)}.ts`) };
      });
    },
  };
}
