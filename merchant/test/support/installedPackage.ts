/**
 * The merchant package as a merchant gets it: built, packed with `npm pack`, and installed from
 * the tarball into an empty folder outside this repository (`npm install ./obol-merchant-….tgz`,
 * its dependencies from the npm cache or the registry, as for anyone). One install per tarball:
 * the folder is named by the tarball's hash, so the Vitest test and the Playwright journey of one
 * run (and later runs of an unchanged package) share it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { ensureBuilt, repoRoot } from '../../../e2e/support/build.ts';

const run = promisify(execFile);

export interface InstalledMerchant {
  /** The merchant's folder: package.json and node_modules/@obol/merchant, nothing else of ours. */
  dir: string;
  /** The package's `obol` command (node_modules/.bin/obol). */
  obol: string;
  tarball: string;
}

/** The environment of the npm commands: none of a calling `npm run`'s workspace settings. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
}

export async function installedMerchant(): Promise<InstalledMerchant> {
  ensureBuilt('widget', 'widget/dist/obol-widget.js', ['widget/src', 'protocol/src']);
  ensureBuilt('merchant', 'merchant/dist/cli.js', ['merchant/src', 'merchant/types', 'merchant/scripts', 'backend/src', 'protocol/src', 'widget/dist']);

  const packDir = await mkdtemp(join(tmpdir(), 'obol-merchant-pack-'));
  try {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: join(repoRoot, 'merchant'), env: npmEnv() });
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    if (!packed) throw new Error('npm pack made no tarball');
    const packedFile = join(packDir, packed.filename);
    const hash = createHash('sha256').update(await readFile(packedFile)).digest('hex').slice(0, 16);
    const dir = join(tmpdir(), `obol-merchant-installed-${hash}`);
    if (!relative(repoRoot, dir).startsWith('..')) throw new Error(`${dir} is inside the repository`);
    await pruneOldInstalls(dir);
    const installed = (): InstalledMerchant => ({ dir, obol: join(dir, 'node_modules', '.bin', 'obol'), tarball: join(dir, packed.filename) });
    if (existsSync(join(dir, 'installed.ok'))) {
      const now = new Date();
      await utimes(dir, now, now); // in use: not pruned as old by another run
      return installed();
    }

    // Installed beside it, then moved into place whole: a folder under the final name is complete.
    const staging = `${dir}.${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging);
    await writeFile(join(staging, 'package.json'), `${JSON.stringify({ name: 'a-small-blog', private: true, type: 'module' }, null, 2)}\n`);
    await copyFile(packedFile, join(staging, packed.filename));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', `./${packed.filename}`], {
      cwd: staging,
      env: npmEnv(),
      timeout: 300_000,
    });
    await writeFile(join(staging, 'installed.ok'), `${new Date().toISOString()}\n`);
    try {
      await rename(staging, dir);
    } catch (e) {
      // Another run installed the same tarball meanwhile: use that one.
      if (!existsSync(join(dir, 'installed.ok'))) throw e;
      await rm(staging, { recursive: true, force: true });
    }
    return installed();
  } finally {
    await rm(packDir, { recursive: true, force: true });
  }
}

/** Installs of earlier packages (another hash) untouched for a day: 60 MB each, gone. */
async function pruneOldInstalls(keep: string): Promise<void> {
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const name of await readdir(tmpdir())) {
    const path = join(tmpdir(), name);
    if (!name.startsWith('obol-merchant-installed-') || path === keep) continue;
    const info = await stat(path).catch(() => undefined);
    if (info && info.mtimeMs < dayAgo) await rm(path, { recursive: true, force: true });
  }
}
