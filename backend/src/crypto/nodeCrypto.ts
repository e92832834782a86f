/**
 * The servers' WebCrypto handle: `protocol/`'s one injected `WebCrypto`, with the operations a
 * server repeats per message done by `node:crypto` instead of `crypto.subtle`.
 *
 * Why: Node's `crypto.subtle` runs every call as an async job (a promise, a job object, a
 * round through the event loop), which costs about as much as the ECDSA arithmetic itself —
 * measured here, an awaited `subtle.verify` makes about 6,500 P-256 verifies per CPU-second where
 * `node:crypto`'s synchronous `verify` with a prepared `KeyObject` makes 11,000–13,000
 * (`npm run bench` prints both). The keys stay CryptoKeys everywhere (imported, stored, passed as
 * before); each one gets its `KeyObject` once (`KeyObject.from`, kept beside it in a WeakMap), so
 * nothing is imported per message. The answers are the same bytes and the same booleans as
 * WebCrypto's (ECDSA P-256 with SHA-256, signatures in IEEE P1363 form, as WebCrypto writes them;
 * see test/nodeCrypto.test.ts): a signature made by one verifies with the other.
 *
 * AES-KW (RFC 3394, the FIG 4 [K2]^K1 per purchase) is WebCrypto's most expensive call here: an
 * export of K2 and a cipher in two async jobs; node:crypto's `id-aes256-wrap` cipher gives the
 * same bytes at a fraction of the cost, from the key bytes read once per key.
 *
 * Anything else — other algorithms, other curves, a key without the usage — goes to
 * `crypto.subtle` unchanged, so its checks and errors stay WebCrypto's. `protocol/` never imports
 * this: it stays browser-safe and gets this handle injected by the backend.
 */
import { KeyObject, createCipheriv, createHash, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { SIGN_ALG } from '@obol/protocol/keys';
import type { WebCrypto } from '@obol/protocol/webcrypto';

const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObjectOf(key: CryptoKey): KeyObject {
  let k = keyObjects.get(key);
  if (!k) {
    k = KeyObject.from(key);
    keyObjects.set(key, k);
  }
  return k;
}

/** ECDSA over P-256 with SHA-256, for a key that has the usage asked: what node:crypto does here. */
function isEs256(algorithm: AlgorithmIdentifier | EcdsaParams, key: CryptoKey, usage: 'sign' | 'verify'): boolean {
  if (typeof algorithm !== 'object' || algorithm.name?.toUpperCase() !== SIGN_ALG.name) return false;
  const hash = (algorithm as EcdsaParams).hash;
  const hashName = typeof hash === 'string' ? hash : hash?.name;
  if (hashName?.toUpperCase() !== SIGN_ALG.hash) return false;
  const keyAlg = key.algorithm as EcKeyAlgorithm;
  return keyAlg.name === 'ECDSA' && keyAlg.namedCurve === 'P-256' && key.usages.includes(usage) && key.type === (usage === 'sign' ? 'private' : 'public');
}

function bytesOf(data: BufferSource): Uint8Array {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/** A Buffer's bytes as an ArrayBuffer of their own (a Buffer may be a view into a shared pool). */
function ownArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** RFC 3394's default initial value: what WebCrypto's AES-KW uses. */
const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
const secretBytes = new WeakMap<CryptoKey, Buffer>();

/** The raw bytes of a secret key, read once (the process's own key objects: not an export to anyone). */
function secretOf(key: CryptoKey): Buffer {
  let b = secretBytes.get(key);
  if (!b) {
    b = keyObjectOf(key).export();
    secretBytes.set(key, b);
  }
  return b;
}

/** AES-KW wrapping of a raw AES key, with the usages and extractability WebCrypto would require. */
function isRawAesKw(format: KeyFormat, key: CryptoKey, wrappingKey: CryptoKey, wrapAlgorithm: AlgorithmIdentifier): boolean {
  const name = typeof wrapAlgorithm === 'string' ? wrapAlgorithm : wrapAlgorithm?.name;
  return (
    format === 'raw' &&
    typeof name === 'string' &&
    name.toUpperCase() === 'AES-KW' &&
    wrappingKey.algorithm.name === 'AES-KW' &&
    wrappingKey.usages.includes('wrapKey') &&
    key.type === 'secret' &&
    key.extractable &&
    key.algorithm.name.startsWith('AES-')
  );
}

function isSha256(algorithm: AlgorithmIdentifier): boolean {
  const name = typeof algorithm === 'string' ? algorithm : algorithm?.name;
  return typeof name === 'string' && name.toUpperCase() === 'SHA-256';
}

/**
 * `base` (default: Node's global WebCrypto) with ES256 sign and verify, SHA-256 digest and AES-KW
 * wrapping of a raw AES key done by node:crypto. The same key objects and the same results as `base`.
 */
export function nodeWebCrypto(base: WebCrypto = globalThis.crypto): WebCrypto {
  const b = base.subtle;
  const sign = async (algorithm: AlgorithmIdentifier | EcdsaParams, key: CryptoKey, data: BufferSource): Promise<ArrayBuffer> => {
    if (!isEs256(algorithm, key, 'sign')) return b.sign(algorithm, key, data);
    return ownArrayBuffer(nodeSign('sha256', bytesOf(data), { key: keyObjectOf(key), dsaEncoding: 'ieee-p1363' }));
  };
  const verify = async (algorithm: AlgorithmIdentifier | EcdsaParams, key: CryptoKey, signature: BufferSource, data: BufferSource): Promise<boolean> => {
    if (!isEs256(algorithm, key, 'verify')) return b.verify(algorithm, key, signature, data);
    try {
      return nodeVerify('sha256', bytesOf(data), { key: keyObjectOf(key), dsaEncoding: 'ieee-p1363' }, bytesOf(signature));
    } catch {
      // WebCrypto answers false for a signature it cannot read (wrong length, out of range).
      return false;
    }
  };
  const digest = async (algorithm: AlgorithmIdentifier, data: BufferSource): Promise<ArrayBuffer> => {
    if (!isSha256(algorithm)) return b.digest(algorithm, data);
    return ownArrayBuffer(createHash('sha256').update(bytesOf(data)).digest());
  };
  const wrapKey = async (format: KeyFormat, key: CryptoKey, wrappingKey: CryptoKey, wrapAlgorithm: AlgorithmIdentifier): Promise<ArrayBuffer> => {
    if (!isRawAesKw(format, key, wrappingKey, wrapAlgorithm)) return b.wrapKey(format, key, wrappingKey, wrapAlgorithm);
    const kek = secretOf(wrappingKey);
    const c = createCipheriv(`id-aes${kek.length * 8}-wrap`, kek, AES_KW_IV);
    return ownArrayBuffer(Buffer.concat([c.update(secretOf(key)), c.final()]));
  };
  const subtle = delegate(b, new Map<PropertyKey, unknown>([['sign', sign], ['verify', verify], ['digest', digest], ['wrapKey', wrapKey]]));
  return delegate(base, new Map([['subtle', subtle]]));
}

/**
 * `target` with the members in `own` replaced; every other method is target's own, bound to it
 * (WebCrypto's methods check their receiver), bound once.
 */
function delegate<T extends object>(target: T, own: Map<PropertyKey, unknown>): T {
  return new Proxy(target, {
    get: (t, prop) => {
      if (own.has(prop)) return own.get(prop);
      const v = Reflect.get(t, prop, t) as unknown;
      if (typeof v !== 'function') return v;
      const bound = v.bind(t);
      own.set(prop, bound);
      return bound;
    },
  });
}

/** The backend's one instance (stateless but for the WeakMap of key objects). */
export const serverCrypto: WebCrypto = nodeWebCrypto();
