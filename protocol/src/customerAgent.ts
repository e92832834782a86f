import type { MerchantPublicInfo, MerchantSessionView, TransactionStatus } from './api.ts';
import type { LoginRecord, ReceiptRecord, StopReason } from './walletStore.ts';
import {
  type AccountView,
  type Balance,
  type ExchangeTableResult,
  accountView,
  balance,
  demoTopUp,
  exchangeTable,
  merchantInfo,
  type VerifiedMerchant,
  verifiedMerchant,
  quote,
  register,
} from './customerAgent/account.ts';
import { type BuyRequest, type RecoveryStep, buy, recover } from './customerAgent/buy.ts';
import { AgentCore, type CustomerAgentOptions, type DepositPolicy, baseUrl } from './customerAgent/core.ts';
import { formatAmount, parseAmount } from './money.ts';
import { type VerifiedOffer, verifiedOffer } from './customerAgent/offer.ts';
import { type PurchaseResult, exportEvidence, findReceipt, openReceipt, prefetchDescription, redeliver } from './customerAgent/purchase.ts';
import type { EvidenceBundle } from './evidence.ts';
import {
  type OpenRequest,
  type TransactionView,
  endTransaction,
  merchantSession,
  openTransaction,
  report,
  requireTransaction,
  transactionStatus,
  refreshRefunds,
  transactionView,
} from './customerAgent/transactions.ts';

/**
 * The customer agent (seed: 201): the wallet's protocol logic with no I/O of its own. Storage,
 * HTTP, clock and crypto are injected, so the same class runs in the extension's service worker
 * (IndexedDB, fetch), the CLI and the Node tests (memory, an Http to the real servers with faults
 * injected on the wire, a ManualClock).
 *
 * Every state change is written to the store before the message that commits to it is sent, so
 * the agent may be stopped between any two awaits: a new agent on the same store carries on
 * (`recover()`, or simply the next `buy()` at that merchant) by resending the very same signed
 * initiation, order, accept or record — each carries an id its receiver handles once.
 *
 * Calls that change transactions run one at a time (a FIFO lock), so two tabs buying from one
 * merchant at once never use the same order number. Everything returned is plain JSON-safe data
 * (money as wire strings) except a purchase's content bytes.
 */
export class CustomerAgent {
  private readonly core: AgentCore;

  constructor(options: CustomerAgentOptions) {
    this.core = new AgentCore(options);
  }

  /** The account, or undefined before registration. */
  async account(): Promise<AccountView | undefined> {
    const a = await this.core.store.getAccount();
    return a && accountView(a);
  }

  /** Registers with an operator: a new long-term key, certified by it (checked up to the root). */
  register(operatorUrl: string, opts: { displayName?: string } = {}): Promise<AccountView> {
    return this.core.exclusive(() => register(this.core, operatorUrl, opts.displayName));
  }

  /** Logs on afresh (other calls log on by themselves when needed). */
  login(): Promise<LoginRecord> {
    return this.core.login();
  }

  balance(): Promise<Balance> {
    return balance(this.core);
  }

  demoTopUp(amount: string): Promise<Balance> {
    return demoTopUp(this.core, amount);
  }

  /** The operator's exchange table: cached while valid, refreshed when expired, or 'unavailable'. */
  exchangeTable(): Promise<ExchangeTableResult> {
    return exchangeTable(this.core);
  }

  /** A merchant price in the customer's currency (half-even), e.g. "EUR:0.05" → "SEK:0.57". */
  quote(price: string): Promise<string> {
    return quote(this.core, price);
  }

  merchantInfo(merchantUrl: string): Promise<MerchantPublicInfo> {
    return merchantInfo(this.core, merchantUrl);
  }

  /** The merchant as the shopper's own operator vouches for it, before any deposit (for prompts). */
  verifiedMerchant(merchantUrl: string): Promise<VerifiedMerchant> {
    return verifiedMerchant(this.core, merchantUrl);
  }

  /** The purchase as the merchant signed it and our operator vouches for the merchant (for prompts). */
  verifiedOffer(merchantUrl: string, productId: string, price: string): Promise<VerifiedOffer> {
    return verifiedOffer(this.core, merchantUrl, productId, price);
  }

  /**
   * Starts fetching the signed description a purchase of this product will order against, so the
   * fetch overlaps the caller's own checks (`buy` then finds it on the wire or done). Public data,
   * nothing ordered or reserved. `merchantUrl` and `price` as `buy` takes them.
   */
  prefetchDescription(merchantUrl: string, productId: string, price: string): void {
    prefetchDescription(this.core, baseUrl(merchantUrl), productId, formatAmount(parseAmount(price)));
  }

  /** Buys one product; opens (or re-opens) a deposit at the merchant when needed. */
  buy(request: BuyRequest): Promise<PurchaseResult> {
    return this.core.exclusive(() => buy(this.core, request));
  }

  /** FIG 2: opens a deposit at a merchant without buying yet. */
  openTransaction(request: OpenRequest): Promise<TransactionView> {
    return this.core.exclusive(async () => transactionView(await openTransaction(this.core, request)));
  }

  /** Stops a session (tells the merchant) and sends the customer record. */
  endTransaction(transactionId: string, reason: StopReason = 'wallet'): Promise<TransactionView> {
    return this.core.exclusive(async () => transactionView(await endTransaction(this.core, transactionId, reason)));
  }

  /** FIG 3 step 8: sends (or resends) the customer record of a transaction. */
  report(transactionId: string): Promise<TransactionView> {
    return this.core.exclusive(async () => transactionView(await report(this.core, await requireTransaction(this.core, transactionId))));
  }

  /** The operator's view of a transaction; a cleared one is stored as cleared. */
  transactionStatus(transactionId: string): Promise<TransactionStatus> {
    return this.core.exclusive(() => transactionStatus(this.core, transactionId));
  }

  /** Refunds after clearing, from our operator, kept with their transactions; how many were new. */
  refreshRefunds(): Promise<number> {
    return this.core.exclusive(() => refreshRefunds(this.core));
  }

  /** The merchant's view of a trading session, asked for with a read signed by its session key. */
  merchantSession(transactionId: string): Promise<MerchantSessionView> {
    return merchantSession(this.core, transactionId);
  }

  /** Finishes what a stopped agent left half done; call once at start-up. */
  recover(): Promise<RecoveryStep[]> {
    return this.core.exclusive(() => recover(this.core));
  }

  async listTransactions(): Promise<TransactionView[]> {
    return (await this.core.store.listTransactions()).map(transactionView);
  }

  async transaction(transactionId: string): Promise<TransactionView | undefined> {
    const tx = await this.core.store.getTransaction(transactionId);
    return tx && transactionView(tx);
  }

  receipts(transactionId?: string): Promise<ReceiptRecord[]> {
    return this.core.store.listReceipts(transactionId);
  }

  /** One receipt, by its id (the acceptId) or by transaction and purchase number. */
  receipt(ref: string | { transactionId: string; n: number }): Promise<ReceiptRecord> {
    return findReceipt(this.core, ref);
  }

  /** A delivered purchase, decrypted again from its receipt (its content is checked against the signed description). */
  openReceipt(ref: string | { transactionId: string; n: number }): Promise<{ content: Uint8Array; contentType: string }> {
    return openReceipt(this.core, ref);
  }

  /**
   * A delivered purchase opened again without a charge (issue 14): proved to the merchant with the
   * transaction's session key, delivered again by it (or, when it cannot be reached, opened from
   * the receipt's own copy; `from` says which). Works after the session ended and was cleared.
   */
  redeliver(ref: string | { transactionId: string; n: number }): Promise<{ content: Uint8Array; contentType: string; receipt: ReceiptRecord; from: 'merchant' | 'receipt' }> {
    return redeliver(this.core, ref);
  }

  /**
   * FIG 4 disputes: the evidence of one purchase for an arbiter (JSON-safe): the merchant-signed
   * description, encrypted product with its ciphertext and wrapped key (null if it never came),
   * the shopper's signed accept, and the merchant and temporary certificates as the wallet holds
   * them. The arbiter obtains K1 from the trusted party, not from the wallet.
   */
  exportEvidence(ref: string | { transactionId: string; n: number }): Promise<EvidenceBundle> {
    return exportEvidence(this.core, ref);
  }
}

export type {
  AccountView,
  EvidenceBundle,
  Balance,
  BuyRequest,
  CustomerAgentOptions,
  DepositPolicy,
  ExchangeTableResult,
  OpenRequest,
  PurchaseResult,
  RecoveryStep,
  TransactionView,
  VerifiedOffer,
};
