import { type ErrorName, ObolError, type ObolErrorJson } from '../errors.ts';
import { OriginT, ProductIdT, checkSchema } from '../messages.ts';
import { type Amount, compare, formatAmount, parseAmount } from '../money.ts';
import type { TransactionRecord, TransactionState } from '../walletStore.ts';
import { type AgentCore, baseUrl, errorJson, isRefusal } from './core.ts';
import { type PurchaseResult, chosenDescription, completeAccept, purchaseIn, samePurchase } from './purchase.ts';
import { closeTransaction, openTransaction, remaining, report, retryInitiation } from './transactions.ts';

export interface BuyRequest {
  /** Where the merchant module is mounted, e.g. https://shop.example/obol */
  merchantUrl: string;
  productId: string;
  /** In the merchant's currency, "EUR:0.05". */
  price: string;
  /** The page origin, from the browser (never from the page's words). Default: the merchant's first. */
  origin?: string;
  /** The wallet's purchase record this is for (its receipt will name it): one click, one purchase. */
  purchaseId?: string;
  /** Told the content as soon as it is opened and checked, while its booking is written (`PurchaseRequest.onOpened`). */
  onOpened?: (opened: PurchaseResult) => void;
}

/** Merchant refusals that mean "this session is over": the wallet opens a new one (once). */
const MERCHANT_CLOSED: ReadonlySet<ErrorName> = new Set(['DEPOSIT_EXHAUSTED', 'SESSION_CLOSED', 'SESSION_EXPIRED', 'UNKNOWN_TRANSACTION']);

/** A session this close to its end is not used for a new purchase. */
const EXPIRY_MARGIN_MS = 10_000;

/**
 * Buys one product: in an open transaction at this merchant with enough deposit left, otherwise in
 * a new one (FIG 2). When the merchant has closed the session (deposit used, timer) the wallet
 * reports it, opens a new transaction and orders again there, once.
 *
 * First of all the wallet fetches the merchant’s signed description of the product (or reuses the one
 * it fetched for the last purchase of it, `chosenDescription`) and checks it
 * names this product at this price (PRODUCT_MISMATCH before any deposit is opened otherwise); the
 * exchange itself is FIG 4 (purchase.ts).
 */
export async function buy(core: AgentCore, request: BuyRequest): Promise<PurchaseResult> {
  const merchantUrl = baseUrl(request.merchantUrl);
  const price = parseAmount(request.price);
  if (price.value < 0n) throw new ObolError('INVALID_AMOUNT', 'a price cannot be negative');
  checkSchema(ProductIdT, request.productId, 'product id');
  if (request.origin !== undefined) checkSchema(OriginT, request.origin, 'origin');
  const priceText = formatAmount(price);
  let { description, cached } = await chosenDescription(core, merchantUrl, request.productId, priceText);

  let reopened = false;
  for (;;) {
    const found = await findTransaction(core, merchantUrl, { ...request, price: priceText });
    if (found && 'receipt' in found) return found;
    const tx = found ?? (await openTransaction(core, { merchantUrl, firstPrice: priceText, origin: request.origin }));
    const origin = request.origin ?? tx.origin ?? tx.merchantOrigins?.[0];
    if (!origin) throw new ObolError('MERCHANT_NOT_TRUSTED', `merchant ${tx.merchantId} names no web origin`);
    const bookedBefore = tx.nextN;
    try {
      return await purchaseIn(core, tx, {
        productId: request.productId,
        price: priceText,
        origin,
        description,
        ...(request.purchaseId !== undefined ? { purchaseId: request.purchaseId } : {}),
        ...(request.onOpened ? { onOpened: request.onOpened } : {}),
      });
    } catch (e) {
      // Only when nothing was booked (no accept was sent: nextN did not move) — a mismatch found
      // after the accept is a charged, disputable purchase and must never be bought again.
      if (cached && e instanceof ObolError && e.name === 'PRODUCT_MISMATCH' && tx.nextN === bookedBefore) {
        // The kept description is no longer the merchant's current one (nothing was paid): fetch it and order once more.
        ({ description, cached } = await chosenDescription(core, merchantUrl, request.productId, priceText, { fresh: true }));
        continue;
      }
      if (reopened || !(e instanceof ObolError) || !MERCHANT_CLOSED.has(e.name)) throw e;
      reopened = true;
      await closeTransaction(core, tx, e.name === 'DEPOSIT_EXHAUSTED' ? 'deposit-used' : 'merchant', { notifyMerchant: false });
    }
  }
}

/** A session this close to its end takes no new purchase. */
function expiring(tx: TransactionRecord, now: number): boolean {
  return (tx.expiresAt ?? 0) <= now + EXPIRY_MARGIN_MS;
}

/** The merchant's certificate names the page's origin (any, when no page asked). */
function forPage(tx: TransactionRecord, origin: string | undefined): boolean {
  return origin === undefined || (tx.merchantOrigins ?? []).includes(origin);
}

/**
 * Can this session take a purchase of `price` from a page at `origin` now? Open at this merchant,
 * certified for the page, in the price's currency, not about to expire, with room for the price:
 * the rule `buy` picks a session by, and the rule a wallet's prompt previews it by.
 */
export function sessionFits(tx: TransactionRecord, merchantUrl: string, price: Amount, origin: string | undefined, now: number): boolean {
  return (
    tx.state === 'open' &&
    tx.merchantUrl === merchantUrl &&
    tx.depositMerchant !== undefined &&
    !expiring(tx, now) &&
    forPage(tx, origin) &&
    price.currency === tx.merchantCurrency &&
    compare(remaining(tx), price) >= 0
  );
}

/**
 * The transaction to buy in, or the finished purchase itself when an accept for this very
 * purchase was still in flight. On the way it finishes what a stopped agent left for this
 * merchant (an initiation, an accept) and ends sessions that are expired or too small.
 */
async function findTransaction(
  core: AgentCore,
  merchantUrl: string,
  request: { productId: string; price: string; origin?: string; purchaseId?: string },
): Promise<TransactionRecord | PurchaseResult | undefined> {
  const price = parseAmount(request.price);
  for (let tx of await core.store.listTransactions()) {
    if (tx.merchantUrl !== merchantUrl) continue;
    if (tx.state === 'initiating') {
      // Never open a second deposit while the first may be reserved: finish this one.
      try {
        tx = await retryInitiation(core, tx);
      } catch (e) {
        if (!isRefusal(e) && tx.state === 'initiating') throw e;
        continue;
      }
    }
    if (tx.state !== 'open') continue;
    if (tx.pending?.accept) {
      const origin = request.origin ?? tx.pending.origin;
      const same = samePurchase(tx.pending, { productId: request.productId, price: request.price, origin, ...(request.purchaseId !== undefined ? { purchaseId: request.purchaseId } : {}) });
      try {
        const done = await completeAccept(core, tx);
        if (same) return done;
      } catch (e) {
        // The click that made this purchase gets its outcome, whatever it is (never a second purchase).
        if (same || !isRefusal(e)) throw e;
        if (MERCHANT_CLOSED.has(e.name)) {
          await closeTransaction(core, tx, 'merchant', { notifyMerchant: false });
          continue;
        }
        // Refused (not charged) or booked with a dispute: either way nothing is in flight any more.
      }
    }
    if (expiring(tx, core.now())) {
      await closeTransaction(core, tx, 'timer', { notifyMerchant: false });
      continue;
    }
    if (!forPage(tx, request.origin) || price.currency !== tx.merchantCurrency) continue;
    if (compare(remaining(tx), price) < 0) {
      // Too little left for this price: end it now so the rest of the deposit goes back.
      await closeTransaction(core, tx, 'deposit-used', { notifyMerchant: true });
      continue;
    }
    return tx;
  }
  return undefined;
}

export interface RecoveryStep {
  id: string;
  transactionId?: string;
  state: TransactionState;
  error?: ObolErrorJson;
}

/**
 * After a restart: finish everything a stopped agent left half done — resend stored initiations
 * and accepts, close expired sessions, send records still owed. Safe to call at any time.
 */
export async function recover(core: AgentCore): Promise<RecoveryStep[]> {
  const steps: RecoveryStep[] = [];
  for (let tx of await core.store.listTransactions()) {
    const owed =
      tx.state === 'initiating' ||
      tx.state === 'closed' ||
      (tx.state === 'open' && (tx.pending?.accept !== undefined || (tx.expiresAt ?? 0) <= core.now()));
    if (!owed) continue;
    let error: ObolErrorJson | undefined;
    try {
      if (tx.state === 'initiating') tx = await retryInitiation(core, tx);
      if (tx.state === 'open' && tx.pending?.accept) await completeAccept(core, tx);
      if (tx.state === 'open' && (tx.expiresAt ?? 0) <= core.now()) {
        await closeTransaction(core, tx, 'timer', { notifyMerchant: false, throwReportErrors: true });
      }
      if (tx.state === 'closed') await report(core, tx);
    } catch (e) {
      error = errorJson(e);
    }
    const step: RecoveryStep = { id: tx.id, state: tx.state };
    if (tx.transactionId) step.transactionId = tx.transactionId;
    if (error) step.error = error;
    steps.push(step);
  }
  return steps;
}
