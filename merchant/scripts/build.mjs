// Builds the publishable package (dist/): the merchant module and the merchant's `obol` command
// as plain JavaScript, our own code (backend/src, protocol/src) bundled in and every npm package
// left an import, declared in package.json's dependencies (checked here: the build fails on an
// import the package does not declare). Beside them: the declarations (types/index.d.ts, checked
// against the real exports by test/types.check.ts) and the files the code reads beside itself.
//
// Files read beside a source file (SQL migrations, the widget build) are found with
// `new URL('<relative>', import.meta.url)`. Each is copied into dist/files/<its repository path>
// and the URL rewritten to that copy, so the installed package reads its own files and nothing
// of this repository.
import { build } from 'esbuild';
import { chmod, cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const repo = resolve(pkgDir, '..');
const outdir = resolve(pkgDir, 'dist');
const SIBLING_URL = /new URL\((['"])(\.{1,2}\/[^'"]*)\1,\s*import\.meta\.url\)/g;

/** Repository files the bundle reads at run time, copied into dist/files/ once the build is done. */
const siblings = new Set();

const siblingFiles = {
  name: 'sibling-files',
  setup(b) {
    b.onLoad({ filter: /\/(backend|protocol|merchant)\/src\/.*\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const contents = source.replace(SIBLING_URL, (_all, quote, rel) => {
        const target = resolve(dirname(args.path), rel);
        const inRepo = relative(repo, target).split('\\').join('/');
        siblings.add(inRepo);
        return `new URL(${quote}./files/${inRepo}${rel.endsWith('/') ? '/' : ''}${quote}, import.meta.url)`;
      });
      return { contents, loader: 'ts' };
    });
  },
};

/** `@obol/protocol/*` is our own TypeScript: bundled, never an import of the installed package. */
const workspaceProtocol = {
  name: 'workspace-protocol',
  setup(b) {
    const protocolSrc = resolve(repo, 'protocol/src');
    b.onResolve({ filter: /^@obol\/protocol(\/.*)?$/ }, (args) => {
      const sub = args.path.slice('@obol/protocol'.length);
      return { path: sub === '' ? resolve(protocolSrc, 'index.ts') : resolve(protocolSrc, `${sub.slice(1)}.ts`) };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { index: resolve(pkgDir, 'src/index.ts'), cli: resolve(pkgDir, 'src/cli.ts') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  plugins: [siblingFiles, workspaceProtocol],
  metafile: true,
  logLevel: 'warning',
  // Shared chunks sit beside the entries: './files/…' holds from every file in dist/.
  chunkNames: 'shared-[hash]',
});

// Every import left in the bundle is a Node built-in or a declared dependency.
const pkg = JSON.parse(await readFile(resolve(pkgDir, 'package.json'), 'utf8'));
const declared = new Set(Object.keys(pkg.dependencies ?? {}));
const builtins = new Set(builtinModules);
const undeclared = new Set();
for (const output of Object.values(result.metafile.outputs)) {
  for (const imp of output.imports) {
    if (!imp.external) continue;
    const name = imp.path.startsWith('@') ? imp.path.split('/').slice(0, 2).join('/') : imp.path.split('/')[0];
    if (imp.path.startsWith('node:') || builtins.has(name)) continue;
    if (!declared.has(name)) undeclared.add(name);
  }
}
if (undeclared.size > 0) {
  console.error(`@obol/merchant: the bundle imports ${[...undeclared].join(', ')}: add ${undeclared.size === 1 ? 'it' : 'them'} to merchant/package.json dependencies`);
  process.exit(1);
}

for (const file of siblings) {
  const from = resolve(repo, file);
  const exists = await stat(from).catch(() => undefined);
  if (!exists) {
    console.error(`@obol/merchant: ${file} is missing (the widget: npm run build -w widget first)`);
    process.exit(1);
  }
  await mkdir(dirname(resolve(outdir, 'files', file)), { recursive: true });
  await cp(from, resolve(outdir, 'files', file), { recursive: true });
}
await cp(resolve(pkgDir, 'types/index.d.ts'), resolve(outdir, 'index.d.ts'));

// The bin: a shebang, and executable.
const cliFile = resolve(outdir, 'cli.js');
const cli = await readFile(cliFile, 'utf8');
await writeFile(cliFile, `#!/usr/bin/env node\n${cli}`);
await chmod(cliFile, 0o755);
