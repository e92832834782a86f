import { ObolError } from './errors.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, sha256, toBase64Url } from './webcrypto.ts';

/**
 * Keys. Obol signs with ECDSA P-256 / SHA-256: measured in Node 20 and Chromium it verifies
 * faster than Ed25519 when requests are verified concurrently (see `npm run bench`), it is what
 * `@peculiar/webcrypto` (our Node fallback) and every X.509 tool support, and non-extractable
 * P-256 keys persist in IndexedDB in every browser we target.
 */
export const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
export const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ALG_NAME = 'ES256' as const;

export async function generateSigningKeyPair(
  extractable = false,
  crypto: WebCrypto = defaultCrypto(),
): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALG, extractable, ['sign', 'verify'])) as CryptoKeyPair;
}

/** Public key as base64url SPKI DER: the wire form of a bare key (session keys, wallet keys). */
export async function exportPublicKey(key: CryptoKey, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.exportKey('spki', key)));
}

export async function importPublicKey(spki: string, crypto: WebCrypto = defaultCrypto()): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey('spki', fromBase64Url(spki), KEY_ALG, true, ['verify']);
  } catch {
    throw new ObolError('MALFORMED', 'public key is not a P-256 SPKI key');
  }
}

/** Key id: base64url of the first 16 bytes of SHA-256(SPKI). Stable, short, derivable by anyone. */
export async function keyIdOf(spki: string, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return toBase64Url((await sha256(fromBase64Url(spki), crypto)).slice(0, 16));
}

/** Something that can sign: a non-extractable private key with its key id. */
export interface Signer {
  readonly kid: string;
  sign(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>>;
}

export function keySigner(kid: string, privateKey: CryptoKey, crypto: WebCrypto = defaultCrypto()): Signer {
  return {
    kid,
    sign: async (data) => new Uint8Array(await crypto.subtle.sign(SIGN_ALG, privateKey, data)),
  };
}

/** A signer and its public half, ready for use: the shape every party keeps for its own key. */
export interface KeyHandle {
  kid: string;
  publicKey: CryptoKey;
  publicKeySpki: string;
  privateKey: CryptoKey;
  signer: Signer;
}

export async function keyHandle(pair: CryptoKeyPair, crypto: WebCrypto = defaultCrypto()): Promise<KeyHandle> {
  const publicKeySpki = await exportPublicKey(pair.publicKey, crypto);
  const kid = await keyIdOf(publicKeySpki, crypto);
  return { kid, publicKey: pair.publicKey, publicKeySpki, privateKey: pair.privateKey, signer: keySigner(kid, pair.privateKey, crypto) };
}

/** Finds the verification key for a key id, or undefined when the id is unknown. */
export type KeyResolver = (kid: string) => CryptoKey | undefined | Promise<CryptoKey | undefined>;

/**
 * Peer keys imported once and kept: importing a key costs more than a verify, so a session's
 * keys are imported when the session opens, never per message. Bounded: a long-running server
 * sees a new session key per transaction, so the least recently added keys are dropped past
 * `maxKeys` (whoever needs one again imports it again from its stored SPKI).
 */
export class KeyRing {
  private readonly keys = new Map<string, CryptoKey>();
  private readonly kidsBySpki = new Map<string, string>();
  constructor(
    private readonly crypto: WebCrypto = defaultCrypto(),
    private readonly maxKeys = 50_000,
  ) {}

  add(kid: string, key: CryptoKey): void {
    this.keys.delete(kid);
    this.keys.set(kid, key);
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
  }

  /** Import an SPKI key (once) and return its key id. */
  async addSpki(spki: string): Promise<string> {
    // A key met again (a merchant's on every record, a session's on both records) costs a map
    // lookup, not a hash of its SPKI.
    const known = this.kidsBySpki.get(spki);
    if (known !== undefined && this.keys.has(known)) return known;
    const kid = await keyIdOf(spki, this.crypto);
    if (!this.keys.has(kid)) this.add(kid, await importPublicKey(spki, this.crypto));
    this.kidsBySpki.set(spki, kid);
    if (this.kidsBySpki.size > this.maxKeys) this.kidsBySpki.delete(this.kidsBySpki.keys().next().value as string);
    return kid;
  }

  get(kid: string): CryptoKey | undefined {
    return this.keys.get(kid);
  }

  readonly resolve: KeyResolver = (kid) => this.keys.get(kid);
}
