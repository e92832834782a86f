// Builds the unpacked extension into extension/dist: the pages (vite.config.ts), then the
// service worker (one ES module file) and the content script (one classic IIFE file). The
// interbank roots the wallet trusts are embedded in the service worker here (trustedRoots.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certToBase64, describeCert, parseCertBundle } from '@obol/protocol/pki';
import { build } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const repo = here('../..');
/** extension/dist, or OBOL_EXTENSION_OUT_DIR (a check that builds a second flavour somewhere else). */
const outDir = process.env.OBOL_EXTENSION_OUT_DIR
  ? isAbsolute(process.env.OBOL_EXTENSION_OUT_DIR)
    ? process.env.OBOL_EXTENSION_OUT_DIR
    : join(process.env.INIT_CWD ?? process.cwd(), process.env.OBOL_EXTENSION_OUT_DIR)
  : here('../dist');
/**
 * OBOL_DEMO=1 (set by `npm start` and the browser tests): a build for the demo world, whose shops
 * are plain http on this machine. Only that build's content script runs on http://127.0.0.1 and
 * http://localhost; a production build runs on https pages only.
 */
const demo = process.env.OBOL_DEMO === '1';
const DEMO_MATCHES = ['http://127.0.0.1/*', 'http://localhost/*'];

/**
 * The roots to embed: the PEM files named by OBOL_TRUSTED_ROOTS (comma-separated; each may be a
 * bundle), or else the demo world's root, the one `npm start` and the browser tests run under
 * (.data/demo/keys/root, or $OBOL_DATA_DIR/keys/root). The demo root is made here when it does not
 * exist yet, with the same command an operator uses (`obol root init`), so a fresh clone builds a
 * wallet that trusts its own demo world and nothing else, without hand steps.
 */
function trustedRoots(): string[] {
  const listed = (process.env.OBOL_TRUSTED_ROOTS ?? '').split(',').map((f) => f.trim()).filter(Boolean);
  // Relative paths are taken from where the command was typed (npm runs workspace scripts in the workspace).
  const typedIn = process.env.INIT_CWD ?? process.cwd();
  let files = listed.map((f) => (isAbsolute(f) ? f : join(typedIn, f)));
  if (files.length === 0) {
    const dataDir = process.env.OBOL_DATA_DIR ?? '.data/demo';
    const rootDir = isAbsolute(dataDir) ? join(dataDir, 'keys', 'root') : join(repo, dataDir, 'keys', 'root');
    execFileSync(
      process.execPath,
      [join(repo, 'backend/bin/obol.js'), 'root', 'init', '--if-missing', '--dir', rootDir, '--name', 'Obol Demo Interbank Root'],
      { stdio: 'inherit' },
    );
    files = [join(rootDir, 'root.cert.pem')];
  }
  const roots = files.flatMap((f) => {
    if (!existsSync(f)) throw new Error(`OBOL_TRUSTED_ROOTS: no such file ${f}`);
    return parseCertBundle(readFileSync(f, 'utf8'));
  });
  for (const r of roots) {
    if (describeCert(r).kind !== 'root') throw new Error(`${r.subject} is not an interbank root certificate`);
    console.log(`extension: trusts interbank root "${r.subject}" (serial ${r.serialNumber})`);
  }
  return roots.map(certToBase64);
}
const roots = trustedRoots();

async function single(entry: string, fileName: string, format: 'es' | 'iife'): Promise<void> {
  await build({
    configFile: false,
    logLevel: 'warn',
    publicDir: false,
    define: { __OBOL_TRUSTED_ROOTS__: JSON.stringify(roots) },
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

await build({ configFile: here('../vite.config.ts'), build: { outDir } });
{
  // public/manifest.json is the production manifest; the demo build adds the demo's hosts.
  const file = join(outDir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as { content_scripts: Array<{ matches: string[] }> };
  if (demo) for (const cs of manifest.content_scripts) cs.matches = [...new Set([...cs.matches, ...DEMO_MATCHES])];
  writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`extension: ${demo ? 'demo build (OBOL_DEMO=1): content script also on http://127.0.0.1 and http://localhost' : 'production build: content script on https pages only'}`);
}
await single('../src/background/main.ts', 'background.js', 'es');
await single('../src/content/main.ts', 'content.js', 'iife');
// The same list, readable: what this build trusts, for whoever audits an installed wallet.
writeFileSync(`${outDir}/trusted-roots.json`, `${JSON.stringify({ roots }, null, 2)}\n`);
for (const f of ['background.js', 'content.js', 'popup.html', 'manifest.json']) {
  console.log(`${outDir === here('../dist') ? 'extension/dist' : outDir}/${f}  ${(statSync(`${outDir}/${f}`).size / 1024).toFixed(1)} KB`);
}
