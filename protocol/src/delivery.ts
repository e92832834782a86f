import { canonicalJson } from './canonicalJson.ts';
import { ObolError } from './errors.ts';
import type { Signer } from './keys.ts';
import { type MessageBody, checkMessageBody } from './messages.ts';
import { formatAmount, parseAmount } from './money.ts';
import { type Signed, signMessage } from './signed.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, sha256, toBase64Url, utf8 } from './webcrypto.ts';

/**
 * FIG 4, secure delivery of digital goods: the cryptography, with nothing but WebCrypto.
 *
 * - A product is encrypted ONCE, when the merchant adds it, with its own random K2:
 *   AES-256-GCM, a random 96-bit IV, and the product id as additional authenticated data (a
 *   ciphertext cannot be passed off as another product's). The merchant signs, once,
 *   `merchant.product` = {productId, SHA-256 of the ciphertext, IV, size} — the seed's
 *   sign_M([product]^K2, productId) — and `merchant.description` = {productId, title,
 *   description, price, contentType, SHA-256 of the plaintext}.
 * - K1 is 32 random bytes the wallet makes per transaction; the trusted party relays it to the
 *   merchant at initiation (FIG 2 steps 2–4).
 * - Per purchase the merchant only wraps K2 with K1 and signs that (`merchant.key`). The wrap is
 *   AES-KW (RFC 3394): the standard key-wrap construction, deterministic, 40 bytes for a 256-bit
 *   key, with a built-in integrity check — unwrapping with any other K1, or a changed byte, fails
 *   instead of yielding a wrong key.
 */

/** The largest product a merchant may add (plaintext bytes). */
export const MAX_PRODUCT_BYTES = 8 * 1024 * 1024;
/** GCM's authentication tag: the ciphertext is the plaintext plus these bytes. */
export const GCM_TAG_BYTES = 16;
/** The longest base64url ciphertext on the wire. */
export const MAX_CIPHERTEXT_B64 = Math.ceil(((MAX_PRODUCT_BYTES + GCM_TAG_BYTES) * 4) / 3);

const IV_BYTES = 12;
const KEY_BYTES = 32;

/** SHA-256 as base64url: the hash form of every FIG 4 message. */
export async function hashB64(bytes: Uint8Array, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return toBase64Url(await sha256(new Uint8Array(bytes), crypto));
}

/**
 * The hash that names one signed description: SHA-256 of the canonical JSON of its body. Order and
 * accept carry it, so the shopper's signature says which description she bought against, and the
 * merchant's re-signing of the same body (ECDSA signatures differ each time) changes nothing.
 */
export function descriptionHash(body: MessageBody<'merchant.description'>, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return hashB64(utf8.encode(canonicalJson(body)), crypto);
}

function productAad(productId: string): Uint8Array<ArrayBuffer> {
  return utf8.encode(`obol.product:${productId}`);
}

function keyBytes(text: string, what: string): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64Url(text);
  } catch {
    throw new ObolError('MALFORMED', `${what} is not base64url`);
  }
  if (bytes.length !== KEY_BYTES) throw new ObolError('MALFORMED', `${what} must be ${KEY_BYTES} bytes (AES-256)`);
  return bytes;
}

/** A fresh K2 for one product: 32 random bytes, base64url (kept by the merchant only). */
export function newProductKey(crypto: WebCrypto = defaultCrypto()): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/** AES-256-GCM with a fresh IV; the product id is authenticated with the ciphertext. */
export async function encryptProduct(
  plaintext: Uint8Array,
  productId: string,
  k2: string,
  crypto: WebCrypto = defaultCrypto(),
): Promise<{ iv: string; ciphertext: Uint8Array<ArrayBuffer> }> {
  const key = await crypto.subtle.importKey('raw', keyBytes(k2, 'K2'), { name: 'AES-GCM' }, false, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: productAad(productId) }, key, new Uint8Array(plaintext)),
  );
  return { iv: toBase64Url(iv), ciphertext };
}

/**
 * Opens a product with K2 (a key from `unwrapProductKey`, or K2's bytes). Throws PRODUCT_MISMATCH
 * when the key, the IV, the product id or a byte of the ciphertext is not what was encrypted.
 */
export async function decryptProduct(
  ciphertext: Uint8Array,
  iv: string,
  k2: CryptoKey | string,
  productId: string,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Uint8Array<ArrayBuffer>> {
  const key = typeof k2 === 'string' ? await crypto.subtle.importKey('raw', keyBytes(k2, 'K2'), { name: 'AES-GCM' }, false, ['decrypt']) : k2;
  let ivBytes: Uint8Array<ArrayBuffer>;
  try {
    ivBytes = fromBase64Url(iv);
  } catch {
    throw new ObolError('MALFORMED', 'the IV is not base64url');
  }
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: ivBytes, additionalData: productAad(productId) }, key, new Uint8Array(ciphertext)),
    );
  } catch {
    throw new ObolError('PRODUCT_MISMATCH', `the key does not open the encrypted product ${productId}`);
  }
}

async function k1Key(k1: string, usage: 'wrapKey' | 'unwrapKey', crypto: WebCrypto): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', keyBytes(k1, 'K1'), { name: 'AES-KW' }, false, [usage]);
}

/** [K2]^K1: K2 wrapped with K1 (AES-KW, RFC 3394), base64url. What `merchant.key` carries. */
export async function wrapProductKey(k2: string, k1: string, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return wrapImportedProductKey(await importProductKeyForWrap(k2, crypto), await importK1ForWrap(k1, crypto), crypto);
}

/**
 * The two halves of `wrapProductKey`, for a merchant that keeps imported keys: K2 is the same for
 * every purchase of a product version and K1 for every purchase of a session, so importing them
 * once each (a key import costs more than the wrap) leaves one wrap per purchase.
 */
export function importProductKeyForWrap(k2: string, crypto: WebCrypto = defaultCrypto()): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', keyBytes(k2, 'K2'), { name: 'AES-GCM' }, true, ['encrypt', 'decrypt']);
}

export function importK1ForWrap(k1: string, crypto: WebCrypto = defaultCrypto()): Promise<CryptoKey> {
  return k1Key(k1, 'wrapKey', crypto);
}

/** K1 imported for unwrapping, for a wallet that keeps it for every purchase of a transaction. */
export function importK1ForUnwrap(k1: string, crypto: WebCrypto = defaultCrypto()): Promise<CryptoKey> {
  return k1Key(k1, 'unwrapKey', crypto);
}

export async function wrapImportedProductKey(k2: CryptoKey, k1: CryptoKey, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.wrapKey('raw', k2, k1, 'AES-KW')));
}

/**
 * K2 from [K2]^K1, as a non-extractable AES-GCM decryption key. Throws PRODUCT_MISMATCH when the
 * wrapped key was not made with this K1 (or was changed): AES-KW checks its own integrity.
 */
export async function unwrapProductKey(wrapped: string, k1: string | CryptoKey, crypto: WebCrypto = defaultCrypto()): Promise<CryptoKey> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64Url(wrapped);
  } catch {
    throw new ObolError('MALFORMED', 'the wrapped key is not base64url');
  }
  try {
    const kek = typeof k1 === 'string' ? await k1Key(k1, 'unwrapKey', crypto) : k1;
    return await crypto.subtle.unwrapKey('raw', bytes, kek, 'AES-KW', { name: 'AES-GCM' }, false, ['decrypt']);
  } catch {
    throw new ObolError('PRODUCT_MISMATCH', 'the wrapped key does not open with K1: it was not made for this transaction');
  }
}

/** What a merchant adds to its catalogue. */
export interface ProductInput {
  productId: string;
  title: string;
  description: string;
  /** Canonical wire form in the merchant's currency, "EUR:0.03". */
  price: string;
  contentType: string;
  content: Uint8Array;
}

/** A product ready to sell: encrypted once, signed once. */
export interface PreparedProduct {
  description: Signed<'merchant.description'>;
  product: Signed<'merchant.product'>;
  /** SHA-256 of the canonical description body (what orders and accepts name). */
  descriptionHash: string;
  ciphertext: Uint8Array<ArrayBuffer>;
  /** K2, base64url: the merchant's secret, never sent except wrapped with a shopper's K1. */
  k2: string;
}

/**
 * Checks a product the way every receiver will (`checkProductInput`), then encrypts it with a new
 * K2 and signs both messages. Bad input throws a catalogue error before anything is made.
 */
export async function prepareProduct(input: ProductInput, signer: Signer, crypto: WebCrypto = defaultCrypto()): Promise<PreparedProduct> {
  checkProductInput(input);
  const descriptionBody: MessageBody<'merchant.description'> = {
    productId: input.productId,
    title: input.title,
    description: input.description,
    price: input.price,
    contentType: input.contentType,
    contentHash: await hashB64(input.content, crypto),
  };
  const k2 = newProductKey(crypto);
  const { iv, ciphertext } = await encryptProduct(input.content, input.productId, k2, crypto);
  const product = await signMessage(
    'merchant.product',
    { productId: input.productId, ciphertextHash: await hashB64(ciphertext, crypto), iv, size: ciphertext.length },
    signer,
  );
  const description = await signMessage('merchant.description', descriptionBody, signer);
  return { description, product, descriptionHash: await descriptionHash(descriptionBody, crypto), ciphertext, k2 };
}

/**
 * A product as every receiver will check it: the schemas of both messages (id, lengths), a title,
 * a media type, a canonical non-negative price, bytes within MAX_PRODUCT_BYTES. Throws MALFORMED or
 * INVALID_AMOUNT with a sentence naming the field.
 */
export function checkProductInput(input: ProductInput): void {
  if (!(input.content instanceof Uint8Array)) throw new ObolError('MALFORMED', `the content of ${input.productId} must be bytes`);
  if (input.content.length > MAX_PRODUCT_BYTES) {
    throw new ObolError('MALFORMED', `the content of ${input.productId} is ${input.content.length} bytes; at most ${MAX_PRODUCT_BYTES} are sold through Obol`);
  }
  if (typeof input.title !== 'string' || input.title.trim() === '') throw new ObolError('MALFORMED', `product ${input.productId} needs a title`);
  if (typeof input.contentType !== 'string' || !/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+( *;.*)?$/i.test(input.contentType)) {
    throw new ObolError('MALFORMED', `contentType ${JSON.stringify(String(input.contentType).slice(0, 100))} is not a media type like "text/plain"`);
  }
  // The description's schema (id pattern, lengths), with a stand-in for the hash made later.
  checkMessageBody('merchant.description', {
    productId: input.productId,
    title: input.title,
    description: input.description,
    price: input.price,
    contentType: input.contentType,
    contentHash: 'A'.repeat(43),
  });
  const price = parseAmount(input.price);
  if (formatAmount(price) !== input.price) {
    throw new ObolError('INVALID_AMOUNT', `the price of ${input.productId} must be written canonically, e.g. ${JSON.stringify(formatAmount(price))}`);
  }
  if (price.value < 0n) throw new ObolError('INVALID_AMOUNT', 'a price cannot be negative');
}
