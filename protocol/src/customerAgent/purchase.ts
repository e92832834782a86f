import { OrderResponse } from '../api.ts';
import { ObolError } from '../errors.ts';
import { keySigner, type Signer } from '../keys.ts';
import { checkSchema } from '../messages.ts';
import { add, formatAmount, parseAmount } from '../money.ts';
import { type Signed, signMessage } from '../signed.ts';
import type { PendingPurchase, ReceiptRecord, TransactionRecord } from '../walletStore.ts';
import { fromBase64Url, sha256, toBase64Url } from '../webcrypto.ts';
import { type AgentCore, isRefusal } from './core.ts';

/**
 * One purchase inside an open trading session, wallet ↔ merchant only (FIG 4 without
 * encryption): signed order → delivery → checks → signed accept → confirmation. Every step is
 * stored before the message that commits to it is sent:
 *
 *   pending order stored → order sent → delivery checked → accept signed and stored → accept sent
 *   → receipt stored → line added and pending cleared.
 *
 * A stop between any two of these leaves a state `purchaseIn` / `completeAccept` continue from:
 * the same order is sent again (same n), the same accept is sent again (same acceptId).
 */

export interface PurchaseRequest {
  productId: string;
  /** Canonical wire amount in the merchant's currency. */
  price: string;
  origin: string;
}

export interface PurchaseResult {
  receipt: ReceiptRecord;
  content: Uint8Array;
  contentType: string;
}

export function sessionSigner(core: AgentCore, tx: TransactionRecord): Signer {
  return keySigner(tx.sessionKid, tx.sessionKeys.privateKey, core.crypto);
}

export function samePurchase(p: PendingPurchase, req: PurchaseRequest): boolean {
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

async function newOrder(core: AgentCore, tx: TransactionRecord, req: PurchaseRequest, n: number): Promise<Signed<'wallet.order'>> {
  if (!tx.transactionId) throw new ObolError('UNKNOWN_TRANSACTION', 'the transaction is not open yet');
  const order = await signMessage(
    'wallet.order',
    { transactionId: tx.transactionId, n, productId: req.productId, price: req.price, origin: req.origin, listSalt: tx.listSalt, time: core.now() },
    sessionSigner(core, tx),
  );
  tx.pending = { n, productId: req.productId, price: req.price, origin: req.origin, order };
  await save(core, tx);
  return order;
}

/**
 * Buys `req` in `tx`. A stored accept in flight is finished first (and is the answer when it was
 * for this very purchase: the shopper never pays twice for one click). A stored order for this
 * purchase is resent as it is; one for another purchase is given up (it was never accepted).
 * Merchant refusals propagate as they are (DEPOSIT_EXHAUSTED, SESSION_CLOSED, …) with nothing
 * pending; no answer (UNAVAILABLE) propagates with the order or accept kept for a resend.
 */
export async function purchaseIn(core: AgentCore, tx: TransactionRecord, req: PurchaseRequest): Promise<PurchaseResult> {
  if (tx.pending?.accept) {
    const same = samePurchase(tx.pending, req);
    const done = await completeAccept(core, tx);
    if (same) return done;
  }
  let order = tx.pending && samePurchase(tx.pending, req) ? tx.pending.order : await newOrder(core, tx, req, tx.nextN);
  let renumbered = false;
  for (;;) {
    let body: unknown;
    try {
      body = await core.postTwice(`${tx.merchantUrl}/order`, { order });
    } catch (e) {
      if (!isRefusal(e)) throw e;
      await dropPending(core, tx);
      // The merchant counts order numbers differently (an unaccepted delivery used up n): one more try.
      if (!renumbered && (e.name === 'OUT_OF_SEQUENCE' || e.name === 'REPLAYED')) {
        renumbered = true;
        order = await newOrder(core, tx, req, order.body.n + 1);
        continue;
      }
      throw e;
    }
    return receiveDelivery(core, tx, body);
  }
}

/** Checks the delivery against the order; only then signs, stores and sends the accept. */
async function receiveDelivery(core: AgentCore, tx: TransactionRecord, body: unknown): Promise<PurchaseResult> {
  const pending = tx.pending!;
  let content: Uint8Array<ArrayBuffer>;
  let contentHash: string;
  try {
    checkSchema(OrderResponse, body, 'delivery');
    if (body.transactionId !== tx.transactionId || body.n !== pending.n) throw new Error('for another order');
    if (body.productId !== pending.productId) throw new Error(`product ${body.productId}, ordered ${pending.productId}`);
    if (formatAmount(parseAmount(body.price)) !== pending.price) throw new Error(`price ${body.price}, ordered ${pending.price}`);
    content = fromBase64Url(body.content);
    contentHash = toBase64Url(await sha256(content, core.crypto));
    if (contentHash !== body.contentHash) throw new Error('the content does not match its hash');
  } catch (e) {
    await dropPending(core, tx);
    const why = e instanceof Error ? e.message : String(e);
    throw new ObolError('PRODUCT_MISMATCH', `the merchant delivered something else than was ordered (${why}); nothing was paid`);
  }
  const cumulative = formatAmount(add(parseAmount(tx.cumulative), parseAmount(pending.price)));
  pending.accept = await signMessage(
    'wallet.accept',
    {
      acceptId: core.newId(),
      transactionId: tx.transactionId!,
      n: pending.n,
      productId: pending.productId,
      price: pending.price,
      receivedHash: contentHash,
      cumulative,
      time: core.now(),
    },
    sessionSigner(core, tx),
  );
  pending.contentHash = contentHash;
  pending.content = body.content;
  pending.contentType = body.contentType;
  // Stored before it is sent: from here on this accept is the only one ever sent for purchase n.
  await save(core, tx);
  return completeAccept(core, tx);
}

/**
 * Sends the stored accept (again) and books the purchase once the merchant has it. The merchant
 * counts an acceptId once, so resending is always safe; REPLAYED means it already had it.
 */
export async function completeAccept(core: AgentCore, tx: TransactionRecord): Promise<PurchaseResult> {
  const pending = tx.pending;
  const accept = pending?.accept;
  if (!pending || !accept) throw new ObolError('NO_ACCEPT', 'no accept is waiting to be sent');
  try {
    await core.postTwice(`${tx.merchantUrl}/accept`, { accept });
  } catch (e) {
    const replayed = e instanceof ObolError && e.name === 'REPLAYED';
    if (!replayed) {
      if (isRefusal(e)) await dropPending(core, tx);
      throw e;
    }
  }
  const receipt: ReceiptRecord = {
    transactionId: accept.body.transactionId,
    n: pending.n,
    merchantId: tx.merchantId,
    merchantUrl: tx.merchantUrl,
    origin: pending.origin,
    productId: pending.productId,
    price: pending.price,
    accept,
    contentHash: accept.body.receivedHash,
    contentType: pending.contentType ?? 'application/octet-stream',
    time: accept.body.time,
  };
  await core.store.addReceipt(receipt);
  if (!tx.lines.some((l) => l.n === pending.n)) tx.lines.push({ n: pending.n, productId: pending.productId, price: pending.price });
  tx.cumulative = accept.body.cumulative;
  tx.nextN = pending.n + 1;
  tx.pending = undefined;
  await save(core, tx);
  return { receipt, content: fromBase64Url(pending.content ?? ''), contentType: receipt.contentType };
}
