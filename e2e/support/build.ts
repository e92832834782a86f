import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The demo world's interbank root folder: the root the extension build embeds as the one it trusts
 * (extension/scripts/build.ts), so the browser tests' operators are certified under it too.
 */
export function demoRootDir(): string {
  const dataDir = process.env.OBOL_DATA_DIR ?? '.data/demo';
  return isAbsolute(dataDir) ? join(dataDir, 'keys', 'root') : join(repoRoot, dataDir, 'keys', 'root');
}

function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Builds a workspace (`npm run build -w NAME`) when `output` is missing or older than any of its
 * source folders (relative to the repository), so a spec run on its own tests what is in the tree.
 */
export function ensureBuilt(workspace: string, output: string, sources: string[], opts: { env?: Record<string, string>; stale?: boolean } = {}): void {
  const built = existsSync(join(repoRoot, output)) ? statSync(join(repoRoot, output)).mtimeMs : 0;
  if (!opts.stale && built > Math.max(...sources.map((s) => newest(join(repoRoot, s))))) return;
  // A test runner sets NODE_ENV=test, which makes vite build development code (a bigger widget
  // than the one shipped); a build is always the production build.
  execFileSync('npm', ['run', 'build', '-w', workspace, '--silent'], { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production', ...opts.env } });
}
