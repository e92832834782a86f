import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

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
export function ensureBuilt(workspace: string, output: string, sources: string[]): void {
  const built = existsSync(join(repoRoot, output)) ? statSync(join(repoRoot, output)).mtimeMs : 0;
  if (built > Math.max(...sources.map((s) => newest(join(repoRoot, s))))) return;
  execFileSync('npm', ['run', 'build', '-w', workspace, '--silent'], { cwd: repoRoot, stdio: 'inherit' });
}
