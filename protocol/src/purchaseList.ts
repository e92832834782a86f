import { canonicalJson } from './canonicalJson.ts';
import { ObolError } from './errors.ts';
import { type Amount, formatAmount, parseAmount } from './money.ts';
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
export function recordPurchasesHash(
  listSalt: string | null | undefined,
  lines: readonly PurchaseLine[],
  crypto: WebCrypto = defaultCrypto(),
  refunds: readonly RefundLine[] = [],
): Promise<string> {
  if (lines.length === 0) return purchasesHash(EMPTY_LIST_SALT, [], crypto);
  if (!listSalt) throw new ObolError('INTERNAL', 'purchases were accepted without a list salt');
  if (refunds.length === 0) return purchasesHash(listSalt, lines, crypto);
  // With refund lines (before clearing): the same salted hash over the purchases and the refunds,
  // in the order of their ids, so both sides hash the same set whatever order they learnt it in.
  return salted(
    listSalt,
    {
      purchases: lines.map(({ n, productId, price }) => ({ n, productId, price })),
      refunds: sortedRefunds(refunds).map(({ refundId, n, amount }) => ({ refundId, n, amount })),
    },
    crypto,
  );
}

/** A merchant's refund line before clearing (the body of a signed `merchant.refundLine`). */
export interface RefundLine {
  refundId: string;
  n: number;
  amount: string;
}

function sortedRefunds<T extends RefundLine>(refunds: readonly T[]): T[] {
  return [...refunds].sort((a, b) => (a.refundId < b.refundId ? -1 : a.refundId > b.refundId ? 1 : 0));
}

/**
 * The one rule of refund lines before clearing, on both sides (merchant when it signs one, wallet
 * when it learns them): each names an accepted purchase, in the purchases' currency, each refundId
 * once, and the lines of purchase n together never more than what purchase n cost — so a refund
 * can only lower a total, never below zero, and never count twice. Returns the record's total:
 * the accepted cumulative minus the refunds. Throws REFUND_INVALID… as CONFLICT/MALFORMED.
 */
export function recordTotal(cumulative: string, lines: readonly PurchaseLine[], refunds: readonly RefundLine[]): Amount {
  const total = parseAmount(cumulative);
  const price = new Map(lines.map((l) => [l.n, parseAmount(l.price).value]));
  const refundedOf = new Map<number, bigint>();
  const ids = new Set<string>();
  let refunded = 0n;
  for (const r of refunds) {
    if (ids.has(r.refundId)) throw new ObolError('CONFLICT', `refund ${r.refundId} is listed twice`);
    ids.add(r.refundId);
    const paid = price.get(r.n);
    if (paid === undefined) throw new ObolError('CONFLICT', `there is no accepted purchase ${r.n} to refund`);
    const a = parseAmount(r.amount);
    if (a.currency !== total.currency) throw new ObolError('CURRENCY_MISMATCH', `a refund of purchase ${r.n} in ${a.currency}, the purchases are in ${total.currency}`);
    if (a.value <= 0n) throw new ObolError('INVALID_AMOUNT', 'a refund is more than nothing');
    const sofar = (refundedOf.get(r.n) ?? 0n) + a.value;
    if (sofar > paid) throw new ObolError('CONFLICT', `refunds of purchase ${r.n} would be more than it cost`);
    refundedOf.set(r.n, sofar);
    refunded += a.value;
  }
  if (refunded > total.value) throw new ObolError('CONFLICT', 'the refunds are more than the purchases');
  return { currency: total.currency, value: total.value - refunded };
}

/** `recordTotal` as the wire writes it. */
export function recordTotalText(cumulative: string, lines: readonly PurchaseLine[], refunds: readonly RefundLine[]): string {
  return formatAmount(recordTotal(cumulative, lines, refunds));
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
