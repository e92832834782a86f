import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ObolError } from '@obol/protocol/errors';
import { fromBase64Url, randomId, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import type { Queryable } from './db.ts';

/**
 * Secrets kept in a database column, sealed (AES-256-GCM) under a data-encryption key that is
 * kept outside the database: a key file in the operator's or shop's key folder (mode 0600, made
 * when missing), or, for in-memory setups, a key handed over in configuration. A copy of the
 * database alone (a backup, a replica, a dump in a ticket) then holds no usable K1 or K2.
 *
 * A sealed value is `sealed:v1:<kid>:<base64url(iv ‖ ciphertext+tag)>`:
 *   - `kid` names the key it was sealed under, so keys can be rotated: the key file holds the
 *     current key and older ones; values are sealed under the current key and opened under
 *     whichever they name (`resealColumn` moves old rows onto the current key);
 *   - the additional authenticated data is `<table>.<column>` and the row's id, so a ciphertext
 *     copied to another row (or another column) does not open.
 */
export const SEALED_PREFIX = 'sealed:v1:';

/** Name of the key file in a key folder. */
export const DATA_KEY_FILE = 'data.key.json';

/** The key file's content: the current key id and every key still able to open old rows. */
interface DataKeyFile {
  current: string;
  keys: Record<string, string>;
}

const KID_RE = /^[A-Za-z0-9_-]{4,32}$/;

/** Where a sealed value lives: the AAD binds the value to it. */
export interface SealedPlace {
  /** `<table>.<column>`, e.g. `acq_transactions.k1`. */
  column: string;
  /** The row's primary key. */
  rowId: string;
}

export class SealKeys {
  /** Imported once when the keys are loaded (never per row): kid → AES-GCM key. */
  private constructor(
    readonly currentKid: string,
    private readonly keys: ReadonlyMap<string, CryptoKey>,
    /** Where the keys came from, for error messages (never the key itself). */
    readonly source: string,
  ) {}

  /** Keys from raw 32-byte values (base64url), e.g. from configuration. The first entry named `current` seals. */
  static async fromRaw(current: string, raw: Record<string, string>, source = 'configuration'): Promise<SealKeys> {
    const keys = new Map<string, CryptoKey>();
    for (const [kid, value] of Object.entries(raw)) {
      if (!KID_RE.test(kid)) throw new ObolError('MALFORMED', `data key id "${kid}" in ${source} is not 4–32 characters of [A-Za-z0-9_-]`);
      let bytes: Uint8Array;
      try {
        bytes = fromBase64Url(value);
      } catch {
        throw new ObolError('MALFORMED', `data key "${kid}" in ${source} is not base64url`);
      }
      if (bytes.length !== 32) throw new ObolError('MALFORMED', `data key "${kid}" in ${source} is ${bytes.length} bytes; AES-256 needs 32`);
      keys.set(kid, await crypto.subtle.importKey('raw', bytes as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt']));
    }
    if (!keys.has(current)) throw new ObolError('MALFORMED', `the current data key "${current}" is not among the keys in ${source}`);
    return new SealKeys(current, keys, source);
  }

  /** A new random key in memory only: for in-memory databases, which die with the process too. */
  static async ephemeral(): Promise<SealKeys> {
    const kid = randomId(6);
    return SealKeys.fromRaw(kid, { [kid]: toBase64Url(crypto.getRandomValues(new Uint8Array(32))) }, 'memory');
  }

  /** Is this value sealed (under any key)? Used by the migration step to find plaintext rows. */
  static isSealed(value: string): boolean {
    return value.startsWith(SEALED_PREFIX);
  }

  async seal(plaintext: string, at: SealedPlace): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const key = this.keys.get(this.currentKid)!;
    const ct = new Uint8Array(
      await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad(at) }, key, utf8.encode(plaintext) as BufferSource),
    );
    const out = new Uint8Array(iv.length + ct.length);
    out.set(iv);
    out.set(ct, iv.length);
    return `${SEALED_PREFIX}${this.currentKid}:${toBase64Url(out)}`;
  }

  async open(sealed: string, at: SealedPlace): Promise<string> {
    const where = `${at.column} of row ${at.rowId}`;
    if (!SealKeys.isSealed(sealed)) {
      throw new ObolError('INTERNAL', `${where} is not sealed: it was stored in clear and the startup step that seals old rows has not run`);
    }
    const rest = sealed.slice(SEALED_PREFIX.length);
    const colon = rest.indexOf(':');
    const kid = rest.slice(0, colon);
    const key = colon > 0 ? this.keys.get(kid) : undefined;
    if (!key) {
      throw new ObolError(
        'INTERNAL',
        `${where} is sealed under data key "${kid}", which is not in ${this.source}: the data key is missing or another one (restore ${DATA_KEY_FILE} of this database)`,
      );
    }
    const bytes = fromBase64Url(rest.slice(colon + 1));
    try {
      const plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bytes.subarray(0, 12) as BufferSource, additionalData: aad(at) },
        key,
        bytes.subarray(12) as BufferSource,
      );
      return utf8.decode(new Uint8Array(plain));
    } catch {
      throw new ObolError(
        'INTERNAL',
        `${where} does not open with data key "${kid}" from ${this.source}: the key is wrong, or the value was altered or copied from another row`,
      );
    }
  }
}

function aad(at: SealedPlace): BufferSource {
  return utf8.encode(`obol-sealed\0${at.column}\0${at.rowId}`) as BufferSource;
}

/**
 * The data key of a key folder: `<dir>/data.key.json` (mode 0600), made with one new key when
 * missing — like the operator's key files. A folder is the deployment's secret store; the key
 * never goes into the database it protects.
 */
export async function loadOrCreateSealKeys(dir: string): Promise<SealKeys> {
  const file = join(dir, DATA_KEY_FILE);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const kid = randomId(6);
    const content: DataKeyFile = { current: kid, keys: { [kid]: toBase64Url(crypto.getRandomValues(new Uint8Array(32))) } };
    // `wx`: two processes starting at once on one folder never overwrite each other's key.
    await writeFile(file, `${JSON.stringify(content)}\n`, { mode: 0o600, flag: 'wx' }).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    });
  }
  await chmod(file, 0o600);
  let parsed: DataKeyFile;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as DataKeyFile;
  } catch {
    throw new ObolError('MALFORMED', `${file} is not a data key file (JSON with "current" and "keys")`);
  }
  if (typeof parsed?.current !== 'string' || typeof parsed.keys !== 'object' || parsed.keys === null) {
    throw new ObolError('MALFORMED', `${file} is not a data key file (JSON with "current" and "keys")`);
  }
  return SealKeys.fromRaw(parsed.current, parsed.keys, file);
}

/**
 * The one-time (and key-rotation) step at startup: every value of `table.column` that is in clear
 * (a row from before sealing) or sealed under an older key is sealed under the current key. Rows
 * already current are not touched, so this is cheap on every start; each row is updated only if
 * it still holds the value read (a concurrent process doing the same is harmless).
 */
export async function resealColumn(db: Queryable, keys: SealKeys, table: string, idColumn: string, column: string, logicalColumn: string): Promise<number> {
  const current = `${SEALED_PREFIX}${keys.currentKid}:`;
  const rows = await db.query<{ id: string; value: string }>(
    `SELECT ${idColumn} AS id, ${column} AS value FROM ${table} WHERE ${column} IS NOT NULL AND ${column} NOT LIKE $1`,
    // Key ids may hold `_`, a LIKE wildcard: escaped, so a row under another key never passes for current.
    [`${current.replace(/[\\%_]/g, (c) => `\\${c}`)}%`],
  );
  for (const r of rows) {
    const at = { column: logicalColumn, rowId: r.id };
    const plain = SealKeys.isSealed(r.value) ? await keys.open(r.value, at) : r.value;
    await db.query(`UPDATE ${table} SET ${column} = $1 WHERE ${idColumn} = $2 AND ${column} = $3`, [await keys.seal(plain, at), r.id, r.value]);
  }
  return rows.length;
}
