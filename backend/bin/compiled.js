// Which code a command runs: the compiled bundle in backend/dist (`npm run build`), or — in a
// development checkout where a source file changed after the last build, or before any build —
// the TypeScript sources through tsx, so a command never runs code older than its sources.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const backend = fileURLToPath(new URL('..', import.meta.url));

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function builtAt(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

/** Runs `dist/<name>.js` when it is newer than every source, else `sourceEntry` through tsx; returns the module. */
export async function load(name, sourceEntry) {
  const bundle = `${backend}dist/${name}.js`;
  const fresh = builtAt(bundle) >= Math.max(newestSource(`${backend}src`), newestSource(`${backend}../protocol/src`));
  if (fresh) {
    // Stack traces name the TypeScript sources (the bundle carries its source map).
    process.setSourceMapsEnabled(true);
    return import(bundle);
  }
  const { register } = await import('tsx/esm/api');
  register();
  return import(`${backend}${sourceEntry}`);
}
