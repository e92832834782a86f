import { canonicalJson } from './canonicalJson.ts';
import { ObolError } from './errors.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, sha256, toBase64Url, utf8 } from './webcrypto.ts';

/**
 * The two salted digests that let operators check a transaction without learning what was bought
 * (DESIGN.md FIG 3 step 9, "Privacy"). Both are keyed by the transaction's list salt: random, made
 * by the wallet, known to wallet and merchant only (it travels in the orders, never to an
 * operator). Without it nothing an operator holds can be recomputed from a shop's public catalogue;
 * with it — revealed to an arbiter only — both can. Each rule lives here once: wallet, merchant,
 * operators and arbiter all call these functions.
 */

/** One accepted purchase as both wallet and merchant record it. */
export interface PurchaseLine {
  n: number;
  productId: string;
  price: string;
}

/**
 * What the accept of purchase n commits to: the line and the two hashes that tie it to what was
 * delivered — the merchant-signed ciphertext hash of what the wallet received, and the hash of the
 * signed description it bought against. The parties keep it; only an arbiter is shown it.
 */
export interface PurchaseOpening extends PurchaseLine {
  receivedHash: string;
  descriptionHash: string;
}

/** SHA-256 over the raw salt bytes followed by the canonical JSON of `value`. */
async function salted(listSalt: string, value: unknown, crypto: WebCrypto): Promise<string> {
  const salt = fromBase64Url(listSalt);
  const text = utf8.encode(canonicalJson(value));
  const buf = new Uint8Array(salt.length + text.length);
  buf.set(salt, 0);
  buf.set(text, salt.length);
  return toBase64Url(await sha256(buf, crypto));
}

/**
 * The salted hash of a transaction's purchase list (FIG 3 records): SHA-256 over the salt and the
 * canonical JSON of the lines `{n, productId, price}` in order. Wallet and merchant compute it
 * alike; the operators compare the two without learning the list.
 */
export function purchasesHash(listSalt: string, lines: readonly PurchaseLine[], crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return salted(listSalt, lines.map(({ n, productId, price }) => ({ n, productId, price })), crypto);
}

/** 32 zero bytes, base64url: the salt of the hash of an empty purchase list. */
export const EMPTY_LIST_SALT = toBase64Url(new Uint8Array(32));

/**
 * The `purchasesHash` of a transaction record, as wallet and merchant must both compute it: with at
 * least one accepted purchase, `purchasesHash(listSalt, lines)`; with none — whether or not an
 * order was ever sent, so whether or not the merchant ever saw the salt — one constant,
 * `purchasesHash(EMPTY_LIST_SALT, [])`. The constant tells an operator nothing the record's
 * `count: 0` does not, and it is what an operator writes when a record never came.
 */
export function recordPurchasesHash(listSalt: string | null | undefined, lines: readonly PurchaseLine[], crypto: WebCrypto = defaultCrypto()): Promise<string> {
  if (lines.length === 0) return purchasesHash(EMPTY_LIST_SALT, [], crypto);
  if (!listSalt) throw new ObolError('INTERNAL', 'purchases were accepted without a list salt');
  return purchasesHash(listSalt, lines, crypto);
}

/**
 * The commitment a wallet's accept carries instead of the purchase itself: SHA-256 over the list
 * salt and the canonical JSON of `{n, productId, price, receivedHash, descriptionHash}`. The accept
 * is the merchant's proof toward its operator (cumulative amount, signed by the shopper's session
 * key); the commitment binds it to exactly one purchase without telling the operator which.
 */
export function purchaseCommitment(listSalt: string, o: PurchaseOpening, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  return salted(
    listSalt,
    { n: o.n, productId: o.productId, price: o.price, receivedHash: o.receivedHash, descriptionHash: o.descriptionHash },
    crypto,
  );
}
