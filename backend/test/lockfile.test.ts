/**
 * The install a newcomer and CI run must work as it is: `npm ci` on a fresh clone refuses a lock
 * file that lacks any package some locked package may need (other platforms' optional binaries
 * included), and a dependency whose `engines` excludes the Node the project declares prints
 * EBADENGINE on every install. Both are facts of package-lock.json, checked here without a network.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface LockedPackage {
  version?: string;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  link?: boolean;
}
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockedPackage> };
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };

/** Where npm would find `name` for the package at `from`: its own node_modules, then each parent's. */
function resolve(from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut >= 0 ? base.slice(0, cut) : '';
  }
}

describe('package-lock.json', () => {
  it('holds every dependency and optional dependency of every locked package (what `npm ci` checks)', () => {
    const missing: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      if (pkg.link) continue;
      const wanted = { ...pkg.dependencies, ...pkg.optionalDependencies };
      for (const [name, range] of Object.entries(wanted)) {
        const found = resolve(path, name);
        const version = found ? lock.packages[found]?.version : undefined;
        if (!found) missing.push(`${path || '(root)'} → ${name}@${range}: not in the lock`);
        else if (version && !range.startsWith('npm:') && !range.includes('/') && !semver.satisfies(version, range))
          missing.push(`${path || '(root)'} → ${name}@${range}: locked ${version}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('needs no Node newer than the one package.json declares (no EBADENGINE on Node 20)', () => {
    const oldest = semver.minVersion(rootManifest.engines.node)?.version;
    expect(oldest).toBeDefined();
    const refusing = Object.entries(lock.packages)
      .filter(([, pkg]) => pkg.engines?.node && !semver.satisfies(oldest!, pkg.engines.node))
      .map(([path, pkg]) => `${path}@${pkg.version}: node ${pkg.engines?.node}`);
    expect(refusing).toEqual([]);
    expect(semver.satisfies(process.versions.node, rootManifest.engines.node)).toBe(true);
  });
});
