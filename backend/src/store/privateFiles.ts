import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Data folders hold ledgers and keys: readable and writable by the owner only. PGlite (through
 * Emscripten's file system) creates its files world-writable (0666) whatever the umask, so the
 * folder is made 0700 before PGlite starts — which keeps every other local user out of all it
 * will ever write there — and the files in it are tightened to 0600 (folders 0700) when the
 * database opens and again when it closes.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Create `dir` (and missing parents) and make it 0700, also when it already existed. */
export async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE);
}

/** Make every folder under `dir` 0700 and every file 0600 (symbolic links are left alone). */
export async function restrictTree(dir: string): Promise<void> {
  const info = await lstat(dir).catch(() => undefined);
  if (!info) return;
  if (info.isDirectory()) {
    if ((info.mode & 0o777) !== PRIVATE_DIR_MODE) await chmod(dir, PRIVATE_DIR_MODE);
    for (const name of await readdir(dir)) await restrictTree(join(dir, name));
  } else if (info.isFile() && (info.mode & 0o777) !== PRIVATE_FILE_MODE) {
    await chmod(dir, PRIVATE_FILE_MODE);
  }
}
