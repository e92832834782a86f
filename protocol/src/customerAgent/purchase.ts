import { AcceptResponse, OrderResponse, RedeliverResponse } from '../api.ts';
import { BoundedCache } from '../boundedCache.ts';
import { canonicalJson } from '../canonicalJson.ts';
import { decryptProduct, descriptionHash, hashB64, importK1ForUnwrap, unwrapProductKey } from '../delivery.ts';
import { ObolError, type ObolErrorJson } from '../errors.ts';
import { EVIDENCE_FORMAT, type EvidenceBundle } from '../evidence.ts';
import { type KeyResolver, keySigner, type Signer } from '../keys.ts';
import { type MessageType, NestedSigned, checkMessageBody, checkSchema } from '../messages.ts';
import { add, formatAmount, parseAmount } from '../money.ts';
import { type Signed, signMessage, verifyMessage } from '../signed.ts';
import { type PurchaseOpening, purchaseCommitment } from '../purchaseList.ts';
import type { AccountRecord, PendingPurchase, ReceiptRecord, ReceiptStatus, TransactionRecord } from '../walletStore.ts';
import { fromBase64Url, toBase64Url } from '../webcrypto.ts';
import { type AgentCore, errorJson, isLost, isRefusal } from './core.ts';

/**
 * One purchase inside an open trading session, wallet ↔ merchant only: FIG 4, the fair exchange.
 *
 *   signed description chosen (GET /products/:id) → signed order → the merchant's signed
 *   encrypted product and the signed description → checks: both signatures against the merchant's
 *   certificate (step 7), the product id and description the shopper chose, SHA-256 of the
 *   ciphertext = the signed hash → signed accept (the purchase is charged now) → the merchant's
 *   signed [K2]^K1 → K2 unwrapped with K1, the content decrypted and checked against the
 *   description's hash.
 *
 * Every step is stored before the message that commits to it is sent:
 *
 *   pending order stored → order sent → delivery checked → accept signed and stored (with the
 *   delivery), its receipt 'awaiting-key' in the same write → accept sent → receipt completed →
 *   line added and pending cleared.
 *
 * A stop between any two of these leaves a state `purchaseIn` / `completeAccept` continue from:
 * the same order is sent again (same n), the same accept is sent again (same acceptId, and the
 * merchant answers it with the same key). A lost or broken answer is asked for again, at most
 * DELIVERY_ATTEMPTS times in all; then the purchase is aborted — before the accept nothing is
 * paid; after it the receipt keeps the evidence.
 */

export interface PurchaseRequest {
  productId: string;
  /** Canonical wire amount in the merchant's currency. */
  price: string;
  origin: string;
  /** The wallet's purchase record this is for: kept on the pending purchase and its receipt. */
  purchaseId?: string;
  /** The merchant-signed description the shopper chose (`fetchDescription`); its signature is checked here. */
  description: Signed<'merchant.description'>;
  /**
   * Told the content once it is decrypted and checked, as its booking starts (the booking's
   * database transaction is open by then, so whatever is read after it sees the purchase booked):
   * a caller may hand the content on without waiting for the booking to be durable. The accept is
   * stored and the merchant holds it, so a booking cut short is finished by `recover()` (the accept
   * is sent again and the merchant answers it with the same key); the purchase stays under the
   * agent's lock until its booking is done.
   */
  onOpened?: (opened: PurchaseResult) => void;
}

export interface PurchaseResult {
  receipt: ReceiptRecord;
  content: Uint8Array;
  contentType: string;
}

/**
 * How often an order (or an accept) is sent before its purchase is given up: once and twice again,
 * at once (see `AgentCore.postTwice` for why the core's in-call resends do not wait). The count is
 * per call, not stored: what a restarted worker resumes from is the stored order or accept itself.
 */
export const DELIVERY_ATTEMPTS = 3;

const SignedDescription = NestedSigned('merchant.description');

export function sessionSigner(core: AgentCore, tx: TransactionRecord): Signer {
  return keySigner(tx.sessionKid, tx.sessionKeys.privateKey, core.crypto);
}

/**
 * Is the purchase in flight this very request? By the wallet's purchase record when both name one
 * (two clicks on one product are two purchases); by what was ordered when neither does (a caller
 * without purchase records, e.g. the agent used on its own).
 */
export function samePurchase(p: PendingPurchase, req: { productId: string; price: string; origin: string; purchaseId?: string }): boolean {
  if (p.purchaseId !== undefined || req.purchaseId !== undefined) return p.purchaseId === req.purchaseId;
  return p.productId === req.productId && p.price === req.price && p.origin === req.origin;
}

async function save(core: AgentCore, tx: TransactionRecord): Promise<void> {
  tx.updatedAt = core.now();
  await core.store.putTransaction(tx);
}

async function dropPending(core: AgentCore, tx: TransactionRecord): Promise<void> {
  tx.pending = undefined;
  await save(core, tx);
}

/**
 * The signed description of a product, as the merchant publishes it, checked for what it says
 * before anything is opened or ordered: this product, at the price the shopper is paying
 * (PRODUCT_MISMATCH otherwise). Its signature is checked once the session is open and the wallet
 * holds the merchant's certificate.
 */
export async function fetchDescription(core: AgentCore, merchantUrl: string, productId: string, price: string): Promise<Signed<'merchant.description'>> {
  const body = await core.http.get(`${merchantUrl}/products/${encodeURIComponent(productId)}`);
  checkSchema(SignedDescription, body, 'product description');
  checkMessageBody('merchant.description', body.body);
  const d = body.body;
  if (d.productId !== productId) {
    throw new ObolError('PRODUCT_MISMATCH', `asked for the description of ${productId}, the merchant sent ${d.productId}'s; nothing was paid`);
  }
  if (formatAmount(parseAmount(d.price)) !== price) {
    throw new ObolError('PRODUCT_MISMATCH', `the merchant's signed description prices ${productId} at ${d.price}, not ${price}; nothing was paid`);
  }
  return body as Signed<'merchant.description'>;
}

/** How long a fetched description is used for further purchases before it is fetched again. */
export const DESCRIPTION_REUSE_MS = 5 * 60_000;
/** Kept as the fetch itself, so a purchase asking while an earlier ask (`prefetch`) is on the wire waits for that one. */
const fetchedDescriptions = new WeakMap<AgentCore, BoundedCache<string, { description: Promise<Signed<'merchant.description'>>; at: number }>>();

/**
 * The description a purchase orders against: fetched (`fetchDescription`) the first time, then
 * reused for DESCRIPTION_REUSE_MS instead of being fetched for every purchase. A kept one that is
 * no longer current costs nothing: the merchant refuses the order, or delivers its current
 * description, which the wallet refuses before any accept (PRODUCT_MISMATCH, nothing paid) — and
 * `buy` then fetches afresh (`fresh`) and orders once more. `cached` says which it was. `maxAgeMs`:
 * a kept one only when asked for at most this long ago (a window shows the current one).
 */
export async function chosenDescription(
  core: AgentCore,
  merchantUrl: string,
  productId: string,
  price: string,
  opts: { fresh?: boolean; maxAgeMs?: number } = {},
): Promise<{ description: Signed<'merchant.description'>; cached: boolean }> {
  let kept = fetchedDescriptions.get(core);
  if (!kept) {
    kept = new BoundedCache(256);
    fetchedDescriptions.set(core, kept);
  }
  const key = `${merchantUrl}|${productId}|${price}`;
  const hit = opts.fresh ? undefined : kept.get(key);
  if (hit && core.now() - hit.at < (opts.maxAgeMs ?? DESCRIPTION_REUSE_MS)) {
    // Kept, or still on the wire for an earlier ask: either way `cached` (at worst a mismatch
    // makes `buy` fetch it once more).
    return { description: await hit.description, cached: true };
  }
  const entry = { description: fetchDescription(core, merchantUrl, productId, price), at: core.now() };
  kept.set(key, entry);
  try {
    return { description: await entry.description, cached: false };
  } catch (e) {
    // A failed fetch is not kept: the next purchase asks again.
    if (kept.get(key) === entry) kept.delete(key);
    throw e;
  }
}

/**
 * Starts fetching the description a purchase is about to order against (`chosenDescription`), so
 * the fetch overlaps the wallet's own checks; the purchase then finds it on the wire or done. A
 * failure here is the purchase's to report, when it asks.
 */
export function prefetchDescription(core: AgentCore, merchantUrl: string, productId: string, price: string): void {
  chosenDescription(core, merchantUrl, productId, price).catch(() => undefined);
}

/**
 * Signed messages whose signature this agent has checked, by key id, signature and canonical body:
 * the same description arrives with every purchase of a product (chosen, then delivered) and is
 * checked once. Only verified ones are kept, and the key is the whole signed content.
 */
const verifiedMessages = new WeakMap<AgentCore, BoundedCache<string, true>>();

function verifiedKey(message: unknown, type: MessageType): string | undefined {
  const m = message as Partial<Signed> | null;
  if (!m || typeof m !== 'object' || m.v !== 1 || m.type !== type || typeof m.kid !== 'string' || typeof m.sig !== 'string' || Object.keys(m).length !== 5) return undefined;
  try {
    return `${type}|${m.kid}|${m.sig}|${canonicalJson(m.body)}`;
  } catch {
    return undefined;
  }
}

/** A merchant-signed message, or BAD_SIGNATURE naming the merchant. */
async function merchantSigned<T extends MessageType>(message: unknown, type: T, resolve: KeyResolver, what: string, core: AgentCore, tx: TransactionRecord): Promise<Signed<T>> {
  try {
    if (type !== 'merchant.description') return await verifyMessage(message, type, resolve, core.crypto);
    // Descriptions repeat (every purchase of a product): checked once per key, signature and body.
    let verified = verifiedMessages.get(core);
    if (!verified) {
      verified = new BoundedCache(1024);
      verifiedMessages.set(core, verified);
    }
    const key = verifiedKey(message, type);
    // The key id must still be the merchant's for this transaction (its resolver knows it).
    if (key && verified.get(key) && (await resolve((message as Signed).kid))) return message as Signed<T>;
    const checked = await verifyMessage(message, type, resolve, core.crypto);
    if (key) verified.set(key, true);
    return checked;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ObolError('BAD_SIGNATURE', `the ${what} is not signed by merchant ${tx.merchantId} (${why})`);
  }
}

async function merchantResolver(core: AgentCore, tx: TransactionRecord): Promise<KeyResolver> {
  if (!tx.merchantCert) throw new ObolError('UNKNOWN_TRANSACTION', 'the transaction is not open yet');
  return core.certResolver(tx.merchantCert);
}

async function newOrder(
  core: AgentCore,
  tx: TransactionRecord,
  req: PurchaseRequest,
  chosen: { description: Signed<'merchant.description'>; descriptionHash: string },
  n: number,
): Promise<Signed<'wallet.order'>> {
  if (!tx.handle) throw new ObolError('UNKNOWN_TRANSACTION', 'the transaction is not open yet');
  const order = await signMessage(
    'wallet.order',
    {
      transactionId: tx.handle,
      n,
      productId: req.productId,
      price: req.price,
      origin: req.origin,
      listSalt: tx.listSalt,
      time: core.now(),
    },
    sessionSigner(core, tx),
  );
  tx.pending = { n, productId: req.productId, price: req.price, origin: req.origin, ...(req.purchaseId !== undefined ? { purchaseId: req.purchaseId } : {}), ...chosen, order };
  await save(core, tx);
  return order;
}

/**
 * Buys `req` in `tx`. A stored accept in flight is finished first (and is the answer when it was
 * for this very purchase: the shopper never pays twice for one click). A stored order for this
 * purchase is resent as it is; one for another purchase is given up (it was never accepted).
 * Merchant refusals propagate as they are (DEPOSIT_EXHAUSTED, SESSION_CLOSED, …) with nothing
 * pending; a wrong product (PRODUCT_MISMATCH) or signature (BAD_SIGNATURE) is refused before any
 * accept; no answer (UNAVAILABLE) after DELIVERY_ATTEMPTS propagates with the order kept for a
 * resend; a delivery that keeps arriving broken is given up. In none of these is anything paid.
 */
export async function purchaseIn(core: AgentCore, tx: TransactionRecord, req: PurchaseRequest): Promise<PurchaseResult> {
  if (tx.pending?.accept) {
    const same = samePurchase(tx.pending, req);
    const done = await completeAccept(core, tx);
    if (same) return done;
  }
  const resolve = await merchantResolver(core, tx);
  const description = await merchantSigned(req.description, 'merchant.description', resolve, `description of ${req.productId}`, core, tx);
  const chosen = { description, descriptionHash: await descriptionHash(description.body, core.crypto) };
  const resend = tx.pending && samePurchase(tx.pending, req) && tx.pending.descriptionHash === chosen.descriptionHash;
  let order = resend ? tx.pending!.order : await newOrder(core, tx, req, chosen, tx.nextN);
  let renumbered = false;
  let broken = '';
  for (let attempt = 1; ; attempt++) {
    if (attempt > DELIVERY_ATTEMPTS) {
      await dropPending(core, tx);
      throw new ObolError(
        'UNAVAILABLE',
        `the delivery of ${req.productId} did not arrive whole in ${DELIVERY_ATTEMPTS} tries (${broken}); the purchase was aborted and nothing was paid`,
      );
    }
    let body: unknown;
    try {
      body = await core.http.post(`${tx.merchantUrl}/order`, { order });
    } catch (e) {
      if (isLost(e)) {
        if (attempt < DELIVERY_ATTEMPTS) continue;
        // Nothing was accepted, so nothing is paid; the same order is resent on the next try.
        throw new ObolError((e as ObolError).name, `${(e as ObolError).message}: no delivery of ${req.productId} after ${DELIVERY_ATTEMPTS} tries; nothing was paid`);
      }
      if (!isRefusal(e)) throw e;
      await dropPending(core, tx);
      // The merchant counts order numbers differently (an unaccepted delivery used up n): one more try.
      if (!renumbered && (e.name === 'OUT_OF_SEQUENCE' || e.name === 'REPLAYED')) {
        renumbered = true;
        order = await newOrder(core, tx, req, chosen, order.body.n + 1);
        attempt = 0;
        continue;
      }
      throw e;
    }
    const delivery = await checkDelivery(core, tx, resolve, body);
    if ('broken' in delivery) {
      broken = delivery.broken;
      continue;
    }
    return acceptDelivery(core, tx, delivery, req.onOpened);
  }
}

interface Delivery {
  product: Signed<'merchant.product'>;
  ciphertext: string;
  ciphertextHash: string;
}

/**
 * The delivery against the order and the chosen description. What is for another product, or not
 * signed by the merchant, is refused for good (the pending order is dropped: nothing was paid);
 * what is merely incomplete — cut short, unreadable — is `{ broken }`, to be asked for again.
 */
async function checkDelivery(core: AgentCore, tx: TransactionRecord, resolve: KeyResolver, body: unknown): Promise<Delivery | { broken: string }> {
  const pending = tx.pending!;
  try {
    checkSchema(OrderResponse, body, 'delivery');
  } catch (e) {
    return { broken: (e as Error).message };
  }
  try {
    const wrong = (why: string) => new ObolError('PRODUCT_MISMATCH', `the merchant delivered something else than was ordered (${why}); nothing was paid`);
    if (body.transactionId !== tx.handle || body.n !== pending.n) throw wrong(`a delivery for ${body.transactionId} #${body.n}`);
    if (body.productId !== pending.productId) throw wrong(`product ${body.productId}, ordered ${pending.productId}`);
    if (formatAmount(parseAmount(body.price)) !== pending.price) throw wrong(`price ${body.price}, ordered ${pending.price}`);
    const product = await merchantSigned(body.product, 'merchant.product', resolve, `encrypted product ${pending.productId}`, core, tx);
    const description = await merchantSigned(body.description, 'merchant.description', resolve, `description of ${pending.productId}`, core, tx);
    if (product.body.productId !== pending.productId) throw wrong(`the encrypted product is signed as ${product.body.productId}`);
    if ((await descriptionHash(description.body, core.crypto)) !== pending.descriptionHash) {
      throw wrong(`the delivered description of ${pending.productId} is not the one the shopper chose`);
    }
    const bytes = fromBase64Url(body.ciphertext);
    if (bytes.length !== product.body.size) return { broken: `${bytes.length} of ${product.body.size} bytes arrived` };
    const ciphertextHash = await hashB64(bytes, core.crypto);
    if (ciphertextHash !== product.body.ciphertextHash) return { broken: 'the ciphertext does not match the hash the merchant signed' };
    return { product, ciphertext: body.ciphertext, ciphertextHash };
  } catch (e) {
    await dropPending(core, tx);
    throw e;
  }
}

/** What the accept of the pending purchase commits to (and an arbiter is later shown), with the list salt. */
function openingOf(tx: TransactionRecord, pending: PendingPurchase): PurchaseOpening & { listSalt: string } {
  return {
    listSalt: tx.listSalt,
    n: pending.n,
    productId: pending.productId,
    price: pending.price,
    // The merchant-signed hash of the ciphertext, checked against what arrived before the accept.
    receivedHash: pending.product!.body.ciphertextHash,
    descriptionHash: pending.descriptionHash,
  };
}

/**
 * Signs, stores and sends the accept of a checked delivery: from here on the purchase is charged.
 * The accept names the purchase only through its salted commitment: the merchant shows it to its
 * operator as proof of the cumulative, and the operator must not learn what was bought.
 */
async function acceptDelivery(core: AgentCore, tx: TransactionRecord, d: Delivery, onOpened?: PurchaseRequest['onOpened']): Promise<PurchaseResult> {
  const pending = tx.pending!;
  // Read while the accept is signed and stored: its receipt names the account's operator certificate.
  const account = core.account();
  account.catch(() => undefined);
  const cumulative = formatAmount(add(parseAmount(tx.cumulative), parseAmount(pending.price)));
  pending.product = d.product;
  pending.ciphertext = d.ciphertext;
  const { listSalt, ...opening } = openingOf(tx, pending);
  pending.accept = await signMessage(
    'wallet.accept',
    {
      acceptId: core.newId(),
      transactionId: tx.handle!,
      n: pending.n,
      cumulative,
      commitment: await purchaseCommitment(listSalt, opening, core.crypto),
      time: core.now(),
    },
    sessionSigner(core, tx),
  );
  // Stored before it is sent, with its 'awaiting-key' receipt in the same write: from here on this
  // accept is the only one ever sent for purchase n, and the receipt holds the evidence.
  tx.updatedAt = core.now();
  const receipt = receiptOf(tx, pending, await account, 'awaiting-key');
  await core.store.storeAccept(tx, receipt);
  return completeAccept(core, tx, await account, onOpened, receipt);
}

function receiptOf(tx: TransactionRecord, pending: PendingPurchase, account: AccountRecord, status: ReceiptStatus): ReceiptRecord {
  const accept = pending.accept!;
  const d = pending.description.body;
  return {
    receiptId: accept.body.acceptId,
    ...(pending.purchaseId !== undefined ? { purchaseId: pending.purchaseId } : {}),
    transactionId: tx.transactionId!,
    handle: accept.body.transactionId,
    n: pending.n,
    status,
    merchantId: tx.merchantId,
    merchantName: tx.merchantName,
    merchantUrl: tx.merchantUrl,
    merchantOperatorId: tx.merchantOperatorId,
    origin: pending.origin,
    productId: pending.productId,
    title: d.title,
    price: pending.price,
    description: pending.description,
    contentHash: d.contentHash,
    contentType: d.contentType,
    product: pending.product!,
    ciphertext: pending.ciphertext!,
    accept,
    opening: openingOf(tx, pending),
    merchantCert: tx.merchantCert!,
    tempCert: tx.tempCert!,
    operatorCert: account.operatorCert,
    time: accept.body.time,
  };
}

/**
 * Sends the stored accept (again) and, once the merchant has it, books the purchase and opens the
 * product with the key that came back. The merchant counts an acceptId once and answers a replay
 * with the same key, so resending is always safe.
 *
 * - No answer after DELIVERY_ATTEMPTS: UNAVAILABLE; the accept stays stored for `recover` and the
 *   receipt ('awaiting-key') holds the evidence should the key never come.
 * - Refused (SESSION_CLOSED, …): nothing was paid; the receipt says 'not-charged'.
 * - Accepted, but the key is not the merchant's, does not open the product, or the content is not
 *   what the description promised: the purchase is booked (the merchant holds the accept), the
 *   receipt is 'disputable', and PRODUCT_MISMATCH (or BAD_SIGNATURE) says so.
 */
export async function completeAccept(
  core: AgentCore,
  tx: TransactionRecord,
  account?: AccountRecord,
  onOpened?: PurchaseRequest['onOpened'],
  /** The 'awaiting-key' receipt, when the caller stored it with the accept (`acceptDelivery`). */
  stored?: ReceiptRecord,
): Promise<PurchaseResult> {
  const pending = tx.pending;
  const accept = pending?.accept;
  if (!pending || !accept || !pending.product || pending.ciphertext === undefined) throw new ObolError('NO_ACCEPT', 'no accept is waiting to be sent');
  const receipt = stored ?? receiptOf(tx, pending, account ?? (await core.account()), 'awaiting-key');
  if (!stored) await core.store.addReceipt(receipt);

  let answer: { key: unknown } | undefined;
  for (let attempt = 1; !answer; attempt++) {
    let body: unknown;
    try {
      body = await core.http.post(`${tx.merchantUrl}/accept`, { accept });
    } catch (e) {
      if (e instanceof ObolError && e.name === 'REPLAYED') break; // the merchant holds purchase n already
      if (isLost(e) && attempt < DELIVERY_ATTEMPTS) continue;
      if (isRefusal(e)) {
        receipt.status = 'not-charged';
        receipt.problem = errorJson(e);
        await core.store.addReceipt(receipt);
        await dropPending(core, tx);
        throw e;
      }
      if (isLost(e)) {
        const lost = e as ObolError;
        throw new ObolError(lost.name, `${lost.message}: the key for ${pending.productId} has not come; the accept is kept and sent again, and receipt ${receipt.receiptId} holds the evidence`);
      }
      throw e;
    }
    try {
      checkSchema(AcceptResponse, body, 'answer to the accept');
      answer = body;
    } catch (e) {
      if (attempt >= DELIVERY_ATTEMPTS) {
        throw new ObolError('UNAVAILABLE', `${(e as Error).message}: the key for ${pending.productId} arrived broken ${DELIVERY_ATTEMPTS} times; the accept is kept and sent again`);
      }
    }
  }

  // The merchant holds the accept: the purchase counts.
  let content: Uint8Array | undefined;
  let problem: ObolErrorJson | undefined;
  if (!answer) {
    problem = { code: 5000, name: 'REPLAYED', message: `the merchant says purchase ${pending.n} was already accepted under another accept, and sent no key` };
  } else {
    try {
      const resolve = await merchantResolver(core, tx);
      const key = await merchantSigned(answer.key, 'merchant.key', resolve, `key for ${pending.productId}`, core, tx);
      receipt.key = key;
      content = await openProduct(core, tx, receipt, key);
    } catch (e) {
      problem = errorJson(e);
    }
  }
  receipt.status = problem ? 'disputable' : 'delivered';
  if (problem) receipt.problem = { name: problem.name, message: problem.message };
  // Booked in one step: the receipt, the content beside it, and the purchase counted in the
  // transaction (and, in the wallet core, its purchase record and budget).
  if (!tx.lines.some((l) => l.n === pending.n)) tx.lines.push({ n: pending.n, productId: pending.productId, price: pending.price });
  tx.cumulative = accept.body.cumulative;
  tx.nextN = pending.n + 1;
  tx.pending = undefined;
  tx.updatedAt = core.now();
  const booking = core.store.bookPurchase(receipt, tx, content ? { content: toBase64Url(content), contentType: receipt.contentType } : undefined);
  if (content && !problem) onOpened?.({ receipt, content, contentType: receipt.contentType });
  await booking;
  if (problem || !content) {
    const name = problem?.name === 'BAD_SIGNATURE' ? 'BAD_SIGNATURE' : 'PRODUCT_MISMATCH';
    throw new ObolError(
      name,
      `${problem?.message ?? 'no content'}. The merchant holds the accept, so ${pending.price} is charged: receipt ${receipt.receiptId} holds the evidence for a dispute`,
    );
  }
  return { receipt, content, contentType: receipt.contentType };
}

/** K1 of each transaction imported once for unwrapping (an import costs more than the unwrap), by its value. */
const k1Keys = new WeakMap<AgentCore, BoundedCache<string, Promise<CryptoKey>>>();

function k1Of(core: AgentCore, k1: string): Promise<CryptoKey> {
  let kept = k1Keys.get(core);
  if (!kept) {
    kept = new BoundedCache(64);
    k1Keys.set(core, kept);
  }
  let key = kept.get(k1);
  if (!key) {
    key = importK1ForUnwrap(k1, core.crypto);
    kept.set(k1, key);
    key.catch(() => kept.delete(k1));
  }
  return key;
}

/**
 * K2 from the merchant's [K2]^K1 with our K1, the product decrypted with it, and its SHA-256
 * checked against the signed description. PRODUCT_MISMATCH names what is wrong.
 */
async function openProduct(core: AgentCore, tx: TransactionRecord, receipt: ReceiptRecord, key: Signed<'merchant.key'>): Promise<Uint8Array> {
  const k = key.body;
  const a = receipt.accept.body;
  if (k.transactionId !== a.transactionId || k.n !== a.n || k.productId !== receipt.productId || k.acceptId !== a.acceptId) {
    throw new ObolError('PRODUCT_MISMATCH', `the merchant sent the key of another purchase (${k.productId}, #${k.n})`);
  }
  const k2 = await unwrapProductKey(k.wrappedK2, await k1Of(core, tx.k1), core.crypto);
  const content = await decryptProduct(fromBase64Url(receipt.ciphertext), receipt.product.body.iv, k2, receipt.productId, core.crypto);
  if ((await hashB64(content, core.crypto)) !== receipt.contentHash) {
    throw new ObolError('PRODUCT_MISMATCH', `the content of ${receipt.productId} is not what the merchant's signed description promised`);
  }
  return content;
}

/** A receipt by its id (the accept's acceptId) or by transaction and purchase number. */
export async function findReceipt(core: AgentCore, ref: string | { transactionId: string; n: number }): Promise<ReceiptRecord> {
  const receipt =
    typeof ref === 'string'
      ? (await core.store.listReceipts()).find((r) => r.receiptId === ref)
      : (await core.store.listReceipts(ref.transactionId)).find((r) => r.n === ref.n);
  if (!receipt) {
    throw new ObolError('UNKNOWN_TRANSACTION', `this wallet has no receipt ${typeof ref === 'string' ? JSON.stringify(ref.slice(0, 80)) : `for purchase ${ref.n} of ${ref.transactionId}`}`);
  }
  return receipt;
}

/** Decrypts a delivered purchase again from its receipt (the history's "open"). */
export async function openReceipt(core: AgentCore, ref: string | { transactionId: string; n: number }): Promise<{ content: Uint8Array; contentType: string }> {
  const receipt = await findReceipt(core, ref);
  const tx = await core.store.getTransaction(receipt.transactionId);
  if (!receipt.key || !tx) throw new ObolError('NO_ACCEPT', `no key was delivered for ${receipt.receiptId}`);
  return { content: await openProduct(core, tx, receipt, receipt.key), contentType: receipt.contentType };
}

/**
 * Issue 14, "never pay twice by accident": a delivered purchase opened again without a charge. The
 * wallet proves the purchase to the merchant — a `wallet.redeliver` signed with the session key of
 * its transaction (kept after the session ends and is cleared), naming the purchase by the acceptId
 * of the accept the merchant holds — and the merchant sends again what it delivered then: the
 * ciphertext of the version accepted and its signed [K2]^K1. The wallet checks the key is the
 * merchant's and for this very accept, and the ciphertext is the one the merchant signed before the
 * accept; then decrypts it with the transaction's K1 and checks the content against the signed
 * description (openProduct). Nothing is ordered or accepted, so nothing can be charged.
 *
 * When the merchant cannot be reached (no answer, not a refusal) the wallet opens the copy its
 * receipt keeps for evidence, which is the same ciphertext and key: the shopper is not kept from
 * what she bought by a shop that is down. A refusal (NO_ACCEPT, UNAUTHORIZED, …) propagates.
 */
export async function redeliver(core: AgentCore, ref: string | { transactionId: string; n: number }): Promise<{ content: Uint8Array; contentType: string; receipt: ReceiptRecord; from: 'merchant' | 'receipt' }> {
  const receipt = await findReceipt(core, ref);
  const tx = await core.store.getTransaction(receipt.transactionId);
  if (!tx || receipt.status !== 'delivered' || !receipt.key) {
    throw new ObolError('NO_ACCEPT', `${receipt.productId} (receipt ${receipt.receiptId}) was not delivered, so there is nothing to open again`);
  }
  const asked = await signMessage(
    'wallet.redeliver',
    { msgId: core.newId(), transactionId: receipt.handle, n: receipt.n, acceptId: receipt.accept.body.acceptId, time: core.now() },
    sessionSigner(core, tx),
  );
  let body: unknown;
  try {
    body = await core.http.post(`${receipt.merchantUrl}/redeliver`, { redeliver: asked });
  } catch (e) {
    if (!isLost(e)) throw e;
    return { content: await openProduct(core, tx, receipt, receipt.key), contentType: receipt.contentType, receipt, from: 'receipt' };
  }
  checkSchema(RedeliverResponse, body, 'redelivery');
  if (body.transactionId !== receipt.handle || body.n !== receipt.n || body.productId !== receipt.productId) {
    throw new ObolError('PRODUCT_MISMATCH', `the merchant delivered again another purchase (${body.productId}, #${body.n}) than ${receipt.productId} #${receipt.n}`);
  }
  const key = await merchantSigned(body.key, 'merchant.key', await merchantResolver(core, tx), `key for ${receipt.productId}`, core, tx);
  // The version accepted, by the hash the merchant signed when it first delivered it (checked then).
  if ((await hashB64(fromBase64Url(body.ciphertext), core.crypto)) !== receipt.product.body.ciphertextHash) {
    throw new ObolError('PRODUCT_MISMATCH', `the merchant delivered again something other than the ${receipt.productId} that was accepted`);
  }
  const content = await openProduct(core, tx, { ...receipt, ciphertext: body.ciphertext }, key);
  return { content, contentType: receipt.contentType, receipt, from: 'merchant' };
}

/**
 * FIG 4 disputes: the evidence of one purchase for an arbiter — the signed description, the signed
 * encrypted product and its ciphertext, the signed accept, the signed wrapped key (or null when it
 * never came), and the certificates as the wallet holds them. Not K1: the arbiter asks the
 * trusted party for it.
 */
export async function exportEvidence(core: AgentCore, ref: string | { transactionId: string; n: number }): Promise<EvidenceBundle> {
  const r = await findReceipt(core, ref);
  return {
    format: EVIDENCE_FORMAT,
    presentedBy: 'shopper',
    // The merchant's and the arbiter's name for it: our operator's TransactionIdentity stays with us.
    transactionId: r.handle,
    n: r.n,
    merchantId: r.merchantId,
    merchantOperatorId: r.merchantOperatorId,
    description: r.description,
    product: r.product,
    ciphertext: r.ciphertext,
    accept: r.accept,
    opening: r.opening,
    key: r.key ?? null,
    merchantCert: r.merchantCert,
    tempCert: r.tempCert,
    operatorCerts: [r.operatorCert],
    exportedAt: core.now(),
  };
}
