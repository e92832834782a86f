import type { BridgeParams, BridgeResults, WalletInfo } from '../bridgeWire.ts';
import { neutralizeBidi } from '../bidi.ts';
import { CustomerAgent } from '../customerAgent.ts';
import { ObolError } from '../errors.ts';
import { parseRate, settleDeposit } from '../exchangeTable.ts';
import type { Http } from '../http.ts';
import { type Amount, amount, compare, formatAmount, max, parseAmount, parseDecimal, sub, sum } from '../money.ts';
import { certToBase64, describeCert, parseCert, parseCertBundle } from '../pki.ts';
import { type StoreName, type WalletDatabase, type WalletTransaction, readStore, writeStore } from '../walletDatabase.ts';
import {
  type AccountRecord,
  type ActivityRecord,
  DatabaseWalletStore,
  type PaymentRecord,
  type PromptRecord,
  type ReceiptRecord,
  type SiteRecord,
  type TransactionRecord,
} from '../walletStore.ts';
import { type WebCrypto, defaultCrypto, randomId, toBase64Url } from '../webcrypto.ts';
import { type AccountView, priceIn } from './account.ts';
import { sessionFits } from './buy.ts';
import { baseUrl, isRefusal } from './core.ts';
import { approveAndReserve, commit, commitIn, heldAt, type ReserveOutcome, release, tryReserve } from './budget.ts';
import { asOf, parsePeriod, renewsAt } from './budgetPeriod.ts';
import { type SessionSummary, purchaseInCustomerCurrency, sessionSummary } from './figures.ts';
import { type DeclinedSite, checkConsent, declinedSites, isApproved, effectiveRules, liftDecline, recordDecline, siteApproved, takeWindowSlot } from './consent.ts';
import type { WalletPlatform } from './platform.ts';
import { type Decision, OriginGate, PromptWaiters } from './promptGate.ts';
import type { VerifiedOffer } from './offer.ts';
import type { PurchaseResult } from './purchase.ts';
import type { TransactionView } from './transactions.ts';
import {
  type History,
  type HistoryItem,
  type OperationHandlers,
  type OperationPayload,
  type OperationResult,
  type OperatorChoice,
  type Overview,
  type PageCaller,
  type PayResult,
  type SessionItem,
  type SiteItem,
  type TableState,
  type WalletOperation,
  type WalletSettingsView,
  dispatchOperation,
} from './walletApi.ts';

/** The deposit the wallet opens at a merchant, per customer currency (at least the first price). */
export const DEFAULT_DEPOSITS: Record<string, string> = {
  SEK: 'SEK:20.00',
  EUR: 'EUR:2.00',
  USD: 'USD:2.00',
  GBP: 'GBP:2.00',
};

/**
 * The deposit sizes a shopper may choose, per customer currency. The operators publish no limit of
 * their own (their one limit is the shopper's balance, which the low-balance notice watches), so
 * the wallet keeps a deposit small enough to lose without harm and large enough to be worth a session.
 */
export const DEPOSIT_LIMITS: Record<string, { min: string; max: string }> = {
  SEK: { min: 'SEK:5.00', max: 'SEK:500.00' },
  EUR: { min: 'EUR:0.50', max: 'EUR:50.00' },
  USD: { min: 'USD:0.50', max: 'USD:50.00' },
  GBP: { min: 'GBP:0.50', max: 'GBP:50.00' },
};

/** Open sessions idle this long are ended by default, so the unused deposit comes back. */
export const DEFAULT_IDLE_CLOSE_MINUTES = 30;
/** The longest idle time a shopper may choose (a day). */
const MAX_IDLE_CLOSE_MINUTES = 1440;

export interface WalletOptions {
  db: WalletDatabase;
  platform: WalletPlatform;
  http: Http;
  info: WalletInfo;
  /** The interbank roots the wallet trusts (base64url DER): the extension build's, or the CLI's --trusted-root. */
  trustedRoots: readonly string[];
  crypto?: WebCrypto;
  operators?: OperatorChoice[];
  deposits?: Record<string, string>;
  /** Session timeout asked for at initiation. */
  timeoutSec?: number;
  /** How long start-up waits before finishing payments a stopped worker left (their pages resend first). */
  resumeDelayMs?: number;
  /** At most this many requests of one origin queue behind an open prompt. */
  maxQueuedPerOrigin?: number;
}

/**
 * A purchase waits this long for a top-up before it gives up (nothing paid): less than a page
 * waits for its answer (the widget: 120 s), so no purchase goes through after its page gave up
 * and the shopper may have clicked again.
 */
const TOP_UP_WAIT_MS = 100_000;
/** While it waits, the balance is looked at again this often (a top-up made elsewhere counts too). */
const TOP_UP_POLL_MS = 5_000;
/** Prompt blocks of page loads older than this are forgotten (the page is long gone). */
const BLOCK_LIFETIME_MS = 24 * 3_600_000;
/** The budget a first window proposes for a site: this many times the price (the shopper may change it). */
const FIRST_BUDGET_PRICES = 5n;

function toError(e: unknown): ObolError {
  if (e instanceof ObolError) return e;
  return new ObolError('INTERNAL', e instanceof Error ? e.message : String(e));
}

/**
 * The wallet core: the customer agent (the protocol) plus everything a wallet does for its
 * shopper — purchase records, site budgets, prompts that need the shopper, receipts, history —
 * over one database (`WalletDatabase`: IndexedDB in the extension, memory in the CLI and the
 * tests) and a platform seam (`WalletPlatform`: windows, the clock). Its one entry point is
 * `handleCoreApiRequest(operation, payload)`; the extension's service worker, the CLI and the
 * tests all call it.
 *
 * A purchase record goes new → (prompting →) authorized → done | failed, each step stored before
 * the next begins, so a wallet stopped at any await finds it again: when the page resends the same
 * request (the content script does, with the same key) or, without a page, at the next start-up.
 * The agent carries the record's id through the purchase onto its receipt, so the two are joined
 * by id, never by matching fields.
 */
export class Wallet {
  readonly store: DatabaseWalletStore;
  private agentInstance: CustomerAgent;
  private readonly gate: OriginGate;
  private readonly waiters = new PromptWaiters();
  private readonly running = new Map<string, Promise<PayResult>>();
  private started: Promise<void> | undefined;
  /** The shopper's chosen deposit (from her settings, kept with the account), read at each new deposit. */
  private chosenDeposit: string | undefined;
  /** Purchases waiting for a top-up, by payment key: resolved when a top-up lands. */
  private readonly topUpWaiters = new Set<() => void>();
  /**
   * Purchase records the agent's booking just committed as done (`booked`), with their answer: the
   * page is answered from here, not by writing and reading the record once more (`finish`). Kept
   * only for a `complete` waiting on `agent.buy` (its key is here, undefined, while it waits), read
   * right after the booking's transaction completed (`buy` returned), then dropped.
   */
  private readonly committedNow = new Map<string, PayResult | undefined>();
  /**
   * The outcome of a purchase confirmed in a window, bought inside its origin's gate (`authorize`):
   * `payOnce` answers the page with it when it succeeded, without reading the record again.
   */
  private readonly confirmedAnswers = new Map<string, Promise<PayResult>>();
  /** Bookings still being written for purchases whose page was answered already (`complete`), by payment key. */
  private readonly bookings = new Map<string, Promise<void>>();
  /** Finishing what a stopped worker left (payments, then `agent.recover()`); tests await it. */
  recovered: Promise<void> = Promise.resolve();

  constructor(private readonly o: WalletOptions) {
    this.store = new DatabaseWalletStore(o.db, { stores: ['sites', 'reservations', 'payments', 'activity'], booked: (t, receipt, delivery) => this.booked(t, receipt, delivery) });
    this.agentInstance = this.makeAgent(undefined);
    this.gate = new OriginGate(o.maxQueuedPerOrigin ?? 3);
  }

  get agent(): CustomerAgent {
    return this.agentInstance;
  }

  private get db(): WalletDatabase {
    return this.o.db;
  }

  private now(): number {
    return this.o.platform.now();
  }

  /** The deposit a new session opens with (at least the first price): the shopper's choice, or the wallet's default. */
  depositSize(currency: string): string | undefined {
    const chosen = this.chosenDeposit && parseAmount(this.chosenDeposit).currency === currency ? this.chosenDeposit : undefined;
    return chosen ?? (this.o.deposits ?? DEFAULT_DEPOSITS)[currency];
  }

  private makeAgent(currency: string | undefined, shopperRoots: readonly string[] = []): CustomerAgent {
    return new CustomerAgent({
      store: this.store,
      http: this.o.http,
      clock: { now: () => this.now() },
      ...(this.o.crypto ? { crypto: this.o.crypto } : {}),
      depositPolicy: { minimum: () => (currency ? this.depositSize(currency) : undefined), timeoutSec: this.o.timeoutSec ?? 900 },
      trustedRoots: [...this.o.trustedRoots, ...shopperRoots],
    });
  }

  /** Start-up (every life of the service worker): idempotent; every request awaits it. */
  start(): Promise<void> {
    this.started ??= this.doStart();
    return this.started;
  }

  private async doStart(): Promise<void> {
    const account = await this.store.getAccount();
    if (account) this.agentInstance = this.makeAgent(account.currency, account.rootAddedByShopper ? [account.rootCert] : []);
    this.chosenDeposit = account?.settings?.deposit;
    const oldest = this.now() - BLOCK_LIFETIME_MS;
    await writeStore(this.db, 'blocks', async (blocks) => {
      for (const b of await blocks.getAll()) if (b.createdAt < oldest) await blocks.delete([b.origin, b.documentId]);
    });
    // In the background: requests need not wait for the network. The agent's own lock keeps
    // `recover()` and purchases apart.
    this.recovered = this.finishLeftovers();
  }

  private async finishLeftovers(): Promise<void> {
    const delay = this.o.resumeDelayMs ?? 2_000;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    for (const p of await readStore(this.db, 'payments', (s) => s.index('byState').getAll('authorized'))) {
      // Not `live`: with no page waiting, only a purchase already under way is finished.
      await this.track(p.key, () => this.complete(p.key, false)).catch(() => undefined);
    }
    if (await this.store.getAccount()) await this.agent.recover().catch(() => undefined);
    this.changed();
  }

  private changed(): void {
    this.o.platform.notifyChanged();
  }

  private async log(entry: Omit<ActivityRecord, 'id' | 'time'>): Promise<void> {
    const time = this.now();
    await writeStore(this.db, 'activity', (s) => s.add({ ...entry, time }));
  }

  private async requireAccount() {
    const account = await this.store.getAccount();
    if (!account) throw new ObolError('NO_WALLET_ACCOUNT', 'this wallet has no account yet: open the Obol wallet to set one up');
    return account;
  }

  // ───────────────────────── public calls (pages) ─────────────────────────

  /**
   * Who the wallet is. The shopper's bank and currency only to a site the shopper approved (a
   * confirmed purchase there succeeded): to any other site they are a fingerprint and a hint of
   * the shopper's country.
   */
  async getInfo(caller: PageCaller): Promise<BridgeResults['obol_getInfo']> {
    await this.start();
    const account = await this.store.getAccount();
    if (!account) return { wallet: this.o.info, hasAccount: false };
    if (!(await siteApproved(this.db, caller.origin))) return { wallet: this.o.info, hasAccount: true };
    return { wallet: this.o.info, hasAccount: true, currency: account.currency, operatorId: account.operatorId };
  }

  /**
   * Prices in the shopper's currency at the cached table (refreshed when missing or expired) — to
   * an approved site only. Any other site gets its own prices back with `tableStatus: 'withheld'`:
   * no currency, no rates (the widget then shows the merchant's price; the confirmation window
   * shows the converted one).
   */
  async quote(caller: PageCaller, params: BridgeParams<'obol_quote'>): Promise<BridgeResults['obol_quote']> {
    await this.start();
    if (!(await siteApproved(this.db, caller.origin))) {
      return { tableStatus: 'withheld', quotes: params.prices.map((p) => ({ price: formatAmount(parseAmount(p)) })) };
    }
    const account = await this.requireAccount();
    const foreign = params.prices.some((p) => parseAmount(p).currency !== account.currency);
    const result = foreign ? await this.agent.exchangeTable() : undefined;
    const tableStatus: BridgeResults['obol_quote']['tableStatus'] = !result
      ? 'valid'
      : result.status !== 'unavailable'
        ? result.status
        : result.table
          ? 'expired'
          : 'missing';
    const table = result && result.status !== 'unavailable' ? result.table : undefined;
    const quotes = params.prices.map((text) => {
      const price = parseAmount(text);
      if (price.currency === account.currency) return { price: formatAmount(price), converted: formatAmount(price) };
      if (!table) return { price: formatAmount(price) };
      try {
        const converted = priceIn(table, price, account.currency);
        return { price: formatAmount(price), converted: formatAmount(converted) };
      } catch {
        return { price: formatAmount(price) }; // a currency the table does not list
      }
    });
    return { tableStatus, quotes };
  }

  /**
   * obol_pay. `key` is the content script's id for this page request: the same request sent again
   * (after the service worker stopped) joins or finishes the first, and never buys twice.
   */
  pay(caller: PageCaller, key: string, params: BridgeParams<'obol_pay'>): Promise<PayResult> {
    const paymentKey = `${caller.origin} ${key}`;
    return this.track(paymentKey, () => this.payOnce(caller, paymentKey, params));
  }

  private track(paymentKey: string, fn: () => Promise<PayResult>): Promise<PayResult> {
    const running = this.running.get(paymentKey);
    if (running) return running;
    const run = fn();
    this.running.set(paymentKey, run);
    // Forgotten once answered and its booking settled (an answer may come first): the same request
    // sent again meanwhile joins this one, never buys again.
    const forget = () => {
      if (this.running.get(paymentKey) === run) this.running.delete(paymentKey);
    };
    run.then(
      () => this.bookings.get(paymentKey),
      () => this.bookings.get(paymentKey),
    ).then(forget, forget);
    return run;
  }

  private async payOnce(caller: PageCaller, paymentKey: string, params: BridgeParams<'obol_pay'>): Promise<PayResult> {
    await this.start();
    const merchantUrl = baseUrl(params.merchant);
    const price = formatAmount(parseAmount(params.price));
    const now = this.now();
    const fresh: PaymentRecord = { key: paymentKey, origin: caller.origin, merchantUrl, productId: params.productId, price, state: 'new', createdAt: now, updatedAt: now };
    if (caller.documentId) fresh.documentId = caller.documentId;
    // One transaction: the record of this request when it was sent before (a resend after the
    // worker stopped), or the new one.
    const { payment, created } = await writeStore(this.db, 'payments', async (s) => {
      const stored = await s.get(paymentKey);
      if (stored) return { payment: stored, created: false };
      await s.put(fresh);
      return { payment: fresh, created: true };
    });
    if (!created) {
      if (payment.merchantUrl !== merchantUrl || payment.productId !== params.productId || payment.price !== price) {
        throw new ObolError('CONFLICT', 'this request id was used for another purchase');
      }
      if (payment.state === 'done' && payment.result) return payment.result;
      if (payment.state === 'failed') throw ObolError.fromJSON(payment.error);
    }
    let resumed = payment.state === 'authorized' || payment.state === 'needs-top-up';
    let reserved: PaymentRecord | undefined;
    if (!resumed) {
      try {
        // true: confirmed in a window and already bought inside that origin's gate (below).
        resumed = await this.authorize(caller, payment, params.description);
        // Reserved within the site's rules just now: the record is as tryReserve wrote it.
        if (!resumed) reserved = { ...payment, state: 'authorized' };
      } catch (e) {
        const error = toError(e);
        await release(this.db, { paymentKey, error: error.toJSON(), now: this.now() });
        if (error.name !== 'USER_REJECTED' && error.name !== 'OVER_BUDGET') {
          await this.log({ kind: 'failed', origin: caller.origin, text: `${params.productId}: ${error.message}`, amount: price });
        }
        this.changed();
        throw error;
      }
    }
    const confirmed = this.confirmedAnswers.get(paymentKey);
    this.confirmedAnswers.delete(paymentKey);
    // Confirmed and bought: its answer (possibly before the booking settled; a failure is read
    // from the record as it stands, below).
    const answered = confirmed ? await confirmed.catch(() => undefined) : undefined;
    if (answered) return answered;
    return this.complete(paymentKey, true, resumed, reserved);
  }

  /**
   * Issue 14: which of `productIds` the shopper bought from this merchant on the caller's own site
   * and had delivered — so the widget shows them as bought, to open, not to buy. Only purchases made
   * at this very origin (a site never learns of purchases at another), and only to a site the
   * shopper approved and has not blocked: any other site is told nothing was bought.
   */
  async purchased(caller: PageCaller, params: BridgeParams<'obol_purchased'>): Promise<BridgeResults['obol_purchased']> {
    await this.start();
    const bought = await this.boughtHere(caller.origin, baseUrl(params.merchant));
    return { productIds: params.productIds.filter((id) => bought.has(id)) };
  }

  /**
   * Opens again a product bought on this site: the merchant delivers it again on the wallet's
   * proof (agent.redeliver), nothing is ordered or charged, and no window asks (nothing needs
   * consent that was not given). What `purchased` would not name is NO_ACCEPT, whatever the reason.
   */
  async open(caller: PageCaller, params: BridgeParams<'obol_open'>): Promise<PayResult> {
    await this.start();
    const receipt = (await this.boughtHere(caller.origin, baseUrl(params.merchant))).get(params.productId);
    if (!receipt) throw new ObolError('NO_ACCEPT', `${params.productId} was not bought on this site with this wallet: there is nothing to open`);
    const opened = await this.agent.redeliver(receipt.receiptId);
    return payResultOf(receipt, { content: toBase64Url(opened.content), contentType: opened.contentType });
  }

  /** The latest delivered purchase of each product from `merchantUrl` at `origin`; none unless the shopper approved the site. */
  private async boughtHere(origin: string, merchantUrl: string): Promise<Map<string, ReceiptRecord>> {
    const bought = new Map<string, ReceiptRecord>();
    if (!(await siteApproved(this.db, origin))) return bought;
    const receipts = await readStore(this.db, 'receipts', (s) => s.getAll());
    receipts.sort((x, y) => x.time - y.time || x.n - y.n);
    for (const r of receipts) {
      if (r.origin === origin && r.merchantUrl === merchantUrl && r.status === 'delivered' && r.key) bought.set(r.productId, r);
    }
    return bought;
  }

  /** The site blocked, declined, or this page load refused: SITE_BLOCKED (one read of the three stores). */
  private async checkNotBlocked(caller: PageCaller): Promise<SiteRecord | undefined> {
    const documentId = caller.documentId;
    const { site, consent, block } = await this.db.transaction(['sites', 'consent', 'blocks'], 'readonly', async (t) => {
      const [site, consent, block] = await Promise.all([
        t.store('sites').get(caller.origin),
        t.store('consent').get(caller.origin),
        documentId ? t.store('blocks').get([caller.origin, documentId]) : undefined,
      ]);
      return { site, consent, block };
    });
    if (site?.blocked) throw new ObolError('SITE_BLOCKED', 'payments on this site are blocked in the wallet');
    checkConsent(consent, this.now());
    if (block) throw new ObolError('SITE_BLOCKED', 'a payment on this page was declined; reload the page to be asked again');
    return site;
  }

  /**
   * Reserve within the site's rules (with a fresh gesture on the page), or ask the shopper (one
   * prompt per origin at a time). A purchase the shopper confirmed is bought while its origin's gate
   * is still held, so the requests queued behind it are decided under rules that stand (rules count
   * only once their purchase succeeded). Returns true when that purchase was attempted here.
   */
  private async authorize(caller: PageCaller, payment: PaymentRecord, description?: string): Promise<boolean> {
    const blocked = this.checkNotBlocked(caller);
    blocked.catch(() => undefined); // awaited below, after the account
    const account = await this.requireAccount();
    const site = await blocked;
    const confirmAndBuy = async (prompt: PromptRecord) => {
      const reserved = await this.awaitPrompt(prompt);
      // Its outcome is stored on the payment (done or failed); payOnce answers from there, or with
      // the content as soon as it is opened (`confirmedAnswers`).
      const bought = this.complete(payment.key, true, false, reserved);
      this.confirmedAnswers.set(payment.key, bought);
      await bought.catch(() => undefined);
      return true;
    };
    if (payment.state === 'prompting' && payment.promptId) {
      const promptId = payment.promptId;
      const prompt = await readStore(this.db, 'prompts', (s) => s.get(promptId));
      if (prompt) {
        return this.gate.run(payment.origin, async (lane) => {
          lane.setPrompting(true);
          return confirmAndBuy(prompt);
        });
      }
    }
    // Side by side, none of them reserving or ordering anything: the merchant's public information,
    // the price in the shopper's currency, and the signed description the purchase will order
    // against (the agent keeps it for `buy`).
    this.agent.prefetchDescription(payment.merchantUrl, payment.productId, payment.price);
    // A site the shopper has not approved is asked in a window whatever the price: what the window
    // shows (the merchant as our operator certifies it, the signed offer) is asked for now as well.
    const offer = isApproved(site) ? undefined : this.agent.verifiedOffer(payment.merchantUrl, payment.productId, payment.price);
    offer?.catch(() => undefined); // awaited when the prompt is made
    const quoted = this.agent.quote(payment.price);
    quoted.catch(() => undefined); // awaited below, after the merchant's checks
    const info = await this.agent.merchantInfo(payment.merchantUrl);
    if (!info.origins.includes(payment.origin)) {
      throw new ObolError('MERCHANT_NOT_TRUSTED', `merchant ${info.merchantId} does not sell on ${payment.origin}`);
    }
    if (parseAmount(payment.price).currency !== info.currency) {
      throw new ObolError('CURRENCY_MISMATCH', `merchant ${info.merchantId} prices in ${info.currency}, not in ${parseAmount(payment.price).currency}`);
    }
    const priceCustomer = await quoted;
    // Stored with the reservation (tryReserve) or with the prompt (createPrompt), not on its own.
    payment.priceCustomer = priceCustomer;
    // Behind another request of this site (a prompt open): decided afresh once it is this one's turn.
    const queued = this.gate.size(payment.origin) > 0;
    return this.gate.run(payment.origin, async (lane) => {
      if (queued) await this.checkNotBlocked(caller); // a prompt answered while this one queued
      const outcome = await tryReserve(this.db, { paymentKey: payment.key, origin: payment.origin, amount: priceCustomer, now: this.now(), gesture: caller.gesture === true, priceCustomer });
      if (outcome.ok) return false;
      if (outcome.reason === 'blocked') throw new ObolError('SITE_BLOCKED', 'payments on this site are blocked in the wallet');
      if (outcome.reason === 'no-gesture') {
        throw new ObolError('USER_ACTIVATION_REQUIRED', 'a purchase needs a click or key press on the page, one purchase per gesture');
      }
      lane.setPrompting(true);
      const prompt = await this.createPrompt(payment, info.name, outcome, priceCustomer, account.currency, description, offer);
      return confirmAndBuy(prompt);
    });
  }

  private async savePayment(key: string, patch: Partial<PaymentRecord>): Promise<void> {
    const now = this.now();
    await writeStore(this.db, 'payments', async (s) => {
      const p = await s.get(key);
      if (p) await s.put({ ...p, ...patch, updatedAt: now });
    });
  }

  /** The open session buy() would use for this purchase (the prompt shows its deposit), if any. */
  private async fittingSession(payment: PaymentRecord): Promise<TransactionRecord | undefined> {
    const price = parseAmount(payment.price);
    const now = this.now();
    return (await this.store.listTransactions()).find((tx) => !tx.pending?.accept && sessionFits(tx, payment.merchantUrl, price, payment.origin, now));
  }

  /**
   * Who the prompt says the merchant is, and which deposit it shows — without reserving anything:
   * the merchant's certificate as our own operator re-issues it on request (checked by the agent),
   * and the deposit the wallet will ask its bank for once the shopper clicks (or the open session's).
   * Nothing reaches the bank's ledger before the click.
   */
  private async promptSubject(payment: PaymentRecord, priceCustomer: string, currency: string, asked?: Promise<VerifiedOffer>) {
    // Before any window: the product and its price as the merchant signed them (UNKNOWN_PRODUCT,
    // PRODUCT_MISMATCH: nothing is shown), the signature checked against the certificate our
    // operator vouches for.
    const offer = await (asked ?? this.agent.verifiedOffer(payment.merchantUrl, payment.productId, payment.price));
    const signed = { title: neutralizeBidi(offer.title), description: neutralizeBidi(offer.description) };
    const tx = await this.fittingSession(payment);
    const price = parseAmount(payment.price);
    if (tx?.merchantCert && tx.transactionId) {
      const cert = describeCert(parseCert(tx.merchantCert));
      const remaining = tx.depositMerchant ? formatAmount(sub(parseAmount(tx.depositMerchant), parseAmount(tx.cumulative))) : undefined;
      // In an open session the purchase costs the step it adds to the session's withdrawal (at the
      // pinned rate): the figure its receipt will show (figures.ts).
      const after = formatAmount(sum(price.currency, [parseAmount(tx.cumulative), price]));
      const charged = tx.rate ? formatAmount(purchaseInCustomerCurrency(tx.depositCustomer, tx.rate, after, payment.price)) : undefined;
      return {
        ...(charged && parseAmount(charged).currency === currency ? { priceCustomer: charged } : {}),
        signed,
        merchantId: cert.merchantId ?? cert.subjectId,
        certifiedOrigins: cert.origins ?? [],
        merchantOperatorId: tx.merchantOperatorId,
        deposit: {
          transactionId: tx.transactionId,
          customer: tx.depositCustomer,
          ...(tx.depositMerchant ? { merchant: tx.depositMerchant } : {}),
          ...(remaining ? { remaining } : {}),
          ...(tx.expiresAt !== undefined ? { expiresAt: tx.expiresAt } : {}),
          openedForPrompt: false,
        },
      };
    }
    const minimum = this.depositSize(currency);
    const inCustomer = parseAmount(priceCustomer);
    const deposit = minimum ? max(parseAmount(minimum), inCustomer) : inCustomer;
    return {
      signed,
      merchantId: offer.merchantId,
      certifiedOrigins: offer.origins,
      merchantOperatorId: offer.operatorId,
      deposit: { customer: formatAmount(deposit), openedForPrompt: false },
    };
  }

  private async createPrompt(
    payment: PaymentRecord,
    merchantName: string,
    outcome: Extract<ReserveOutcome, { ok: false }>,
    quotedCustomer: string,
    currency: string,
    description?: string,
    /** What the window shows, when asked for already (`authorize`). */
    offer?: Promise<VerifiedOffer>,
  ): Promise<PromptRecord> {
    const subject = await this.promptSubject(payment, quotedCustomer, currency, offer);
    const priceCustomer = ('priceCustomer' in subject ? subject.priceCustomer : undefined) ?? quotedCustomer;
    if (!subject.certifiedOrigins.includes(payment.origin)) {
      throw new ObolError('MERCHANT_NOT_TRUSTED', `the certificate of ${subject.merchantId} does not name ${payment.origin}`);
    }
    // The window is about to open: a declined site opens none, and none opens past the rate.
    await takeWindowSlot(this.db, payment.origin, this.now());
    // Only rules that stand propose anything (not those still waiting on their purchase).
    const rules = effectiveRules(outcome.site);
    const site = outcome.site && rules?.approved ? { ...outcome.site, ...rules } : undefined;
    const price = parseAmount(priceCustomer);
    const spent = outcome.site ? parseAmount(outcome.site.spent) : amount(currency, 0n);
    const needed = sum(currency, [spent, parseAmount(outcome.reserved), price]);
    // What a shopper would choose, not what a page would like: a few purchases at this price (not
    // the whole deposit), and auto-pay up to this price (not ten times it). Editable in the window.
    const suggestedBudget = site ? max(parseAmount(site.budget), needed) : max(amount(currency, price.value * FIRST_BUDGET_PRICES), needed);
    const suggestedAuto = site ? max(parseAmount(site.autoPayLimit), price) : price;
    const table = await this.tableState();
    const now = this.now();
    const prompt: PromptRecord = {
      id: randomId(16, this.o.crypto ?? defaultCrypto()),
      origin: payment.origin,
      paymentKey: payment.key,
      kind: outcome.reason === 'blocked' || outcome.reason === 'no-gesture' ? 'first' : outcome.reason,
      status: 'waiting',
      merchantName: neutralizeBidi(merchantName),
      merchantId: subject.merchantId,
      signed: subject.signed,
      certifiedOrigins: subject.certifiedOrigins,
      merchantOperatorId: subject.merchantOperatorId,
      productId: payment.productId,
      price: payment.price,
      priceCustomer,
      deposit: subject.deposit,
      suggested: { budget: formatAmount(suggestedBudget), autoPayLimit: formatAmount(suggestedAuto) },
      needed: formatAmount(needed),
      table: { status: table.status, ...(table.issuedAt ? { issuedAt: table.issuedAt } : {}), ...(table.expiresAt ? { expiresAt: table.expiresAt } : {}) },
      createdAt: now,
    };
    if (description) prompt.description = neutralizeBidi(description.slice(0, 300));
    // Banks by name for the shopper: ours always; the merchant's when it is ours too.
    const account = await this.store.getAccount();
    if (account) {
      prompt.bankName = account.operatorName;
      if (account.operatorId === subject.merchantOperatorId) prompt.merchantOperatorName = account.operatorName;
    }
    if (site) prompt.site = { budget: site.budget, spent: site.spent, reserved: outcome.reserved, autoPayLimit: site.autoPayLimit };
    // The prompt and the purchase record that points at it in one write (one commit before the
    // window opens, not two; a stopped worker finds both or neither).
    const patch: Partial<PaymentRecord> = { state: 'prompting', promptId: prompt.id, ...(payment.priceCustomer !== undefined ? { priceCustomer: payment.priceCustomer } : {}) };
    await this.db.transaction(['prompts', 'payments'], 'readwrite', async (t) => {
      await t.store('prompts').put(prompt);
      const p = await t.store('payments').get(payment.key);
      if (p) await t.store('payments').put({ ...p, ...patch, updatedAt: now });
    });
    return prompt;
  }

  /** Shows (or finds again) the prompt's window and waits for the shopper's click. */
  /** Returns the purchase record as reserving it on the shopper's acceptance wrote it. */
  private async awaitPrompt(prompt: PromptRecord): Promise<PaymentRecord> {
    const decided = this.waiters.wait(prompt.id); // before anything else: the click may come at any time
    const current = (await this.promptRecord(prompt.id)) ?? prompt;
    let decision = current.decision;
    if (!decision) {
      if (current.windowId === undefined) {
        const windowId = await this.o.platform.showPrompt(prompt.id);
        if (windowId !== undefined) await this.patchPrompt(prompt.id, { windowId });
        else await this.recordDecision(prompt.id, { accept: false, at: this.now() }); // nowhere to ask: that is a no
        this.changed();
      } else if (!(await this.o.platform.windowExists(current.windowId))) {
        await this.recordDecision(prompt.id, { accept: false, at: this.now() }); // closed while the worker was stopped
      }
      decision = (await this.promptRecord(prompt.id))?.decision ?? (await decided);
    }
    this.waiters.settle(prompt.id, decision); // nobody else waits for it any more
    const payment = await this.paymentRecord(prompt.paymentKey);
    if (!payment) throw new ObolError('INTERNAL', 'the payment of this prompt is gone');
    if (decision.accept) {
      await approveAndReserve(this.db, {
        paymentKey: payment.key,
        origin: payment.origin,
        amount: prompt.priceCustomer,
        budget: decision.budget ?? prompt.suggested.budget,
        autoPayLimit: decision.autoPayLimit ?? prompt.suggested.autoPayLimit,
        merchantId: prompt.merchantId,
        now: this.now(),
      });
      return { ...payment, state: 'authorized' };
    }
    await this.declined(prompt, payment);
    throw declineError();
  }

  private promptRecord(id: string): Promise<PromptRecord | undefined> {
    return readStore(this.db, 'prompts', (s) => s.get(id));
  }

  private paymentRecord(key: string): Promise<PaymentRecord | undefined> {
    return readStore(this.db, 'payments', (s) => s.get(key));
  }

  private patchPrompt(id: string, patch: Partial<PromptRecord>): Promise<PromptRecord | undefined> {
    return writeStore(this.db, 'prompts', async (s) => {
      const p = await s.get(id);
      const next = p && { ...p, ...patch };
      if (next) await s.put(next);
      return next;
    });
  }

  /** Stores the decision once (the first click counts); returns the decision that stands. */
  private recordDecision(id: string, decision: Decision): Promise<Decision | undefined> {
    return writeStore(this.db, 'prompts', async (s) => {
      const p = await s.get(id);
      if (!p) return undefined;
      if (p.decision) return p.decision;
      await s.put({ ...p, decision, status: decision.accept ? 'accepted' : 'rejected' });
      return decision;
    });
  }

  /**
   * A declined prompt: the site asks no more — from any tab, after any reload — until the shopper
   * allows it again in the popup or the cool-down passed (consent.ts); a deposit opened for it goes back.
   */
  private async declined(prompt: PromptRecord, payment: PaymentRecord): Promise<void> {
    await recordDecline(this.db, payment.origin, this.now());
    const documentId = payment.documentId;
    const now = this.now();
    if (documentId) await writeStore(this.db, 'blocks', (s) => s.put({ origin: payment.origin, documentId, createdAt: now }));
    const tid = prompt.deposit.transactionId;
    if (prompt.deposit.openedForPrompt && tid) {
      const tx = await this.store.getTransaction(tid);
      if (tx && tx.state === 'open' && tx.lines.length === 0 && !tx.pending) await this.agent.endTransaction(tid).catch(() => undefined);
    }
    await this.log({
      kind: 'rejected',
      origin: payment.origin,
      text: `declined ${payment.productId}`,
      subject: prompt.signed?.title ?? payment.productId,
      amount: prompt.priceCustomer,
    });
  }

  /**
   * Buys (or finishes buying) an authorized payment and commits its reservation. `live`: a page
   * waits for it, so a purchase that never started may start now; without a page only one already
   * under way (a stored order or accept) is finished, and one that never started is released.
   * `resumed`: it was authorized before (in an earlier life, or a try that got no answer), so a
   * receipt the agent booked meanwhile is looked for first: that purchase is never bought twice.
   */
  private async complete(paymentKey: string, live: boolean, resumed = true, known?: PaymentRecord): Promise<PayResult> {
    // `known`: the record as this very call just wrote it (not read again).
    const p = known ?? (await this.paymentRecord(paymentKey));
    if (!p) throw new ObolError('INTERNAL', 'unknown payment');
    if (p.state === 'done' && p.result) return p.result;
    if (p.state === 'failed') throw ObolError.fromJSON(p.error);
    if (p.state === 'needs-top-up') {
      if (!live) throw new ObolError('INSUFFICIENT_FUNDS', 'the purchase waits for a top-up');
      await this.waitForFunds(p);
    }
    if (resumed) {
      const booked = await this.bookedReceipt(p);
      if (booked) return this.finishFromReceipt(p, booked);
      if (!live && !(await this.hasPending(p))) {
        const error = new ObolError('NO_ACCEPT', 'the purchase was interrupted before it was ordered; nothing was paid');
        await release(this.db, { paymentKey, error: error.toJSON(), now: this.now() });
        this.changed();
        throw error;
      }
    }
    this.committedNow.set(paymentKey, undefined); // this call waits for the booking's answer
    // A page waits for a purchase reserved by this very call (`known`): it is answered as soon as
    // the content is opened and checked, while the booking is written (the accept is stored and the
    // merchant holds it: a booking cut short is finished by recovery, never bought again; the
    // agent's lock keeps the next purchase behind it). Not for a purchase confirmed in a window:
    // `payOnce` reads its outcome from the record afterwards, which must be booked by then.
    let answer: ((result: PayResult) => void) | undefined;
    const opened = live && known ? new Promise<PayResult>((resolve) => (answer = resolve)) : undefined;
    const buying = this.agent.buy({
      merchantUrl: p.merchantUrl,
      productId: p.productId,
      price: p.price,
      origin: p.origin,
      purchaseId: p.key,
      ...(answer ? { onOpened: (o: PurchaseResult) => answer?.(payResultOf(o.receipt, { content: toBase64Url(o.content), contentType: o.contentType })) } : {}),
    });
    const settled = this.settle(p, live, buying);
    if (!opened) return settled;
    const first = await Promise.race([settled, opened]);
    // Answered before the booking settled: the request stays tracked until it has (`track`).
    const booking = settled.then(
      () => undefined,
      () => undefined,
    );
    this.bookings.set(paymentKey, booking);
    void booking.then(() => {
      if (this.bookings.get(paymentKey) === booking) this.bookings.delete(paymentKey);
    });
    return first;
  }

  /** The purchase's outcome once `agent.buy` settled: booked and answered, or its failure handled. */
  private async settle(p: PaymentRecord, live: boolean, buying: Promise<PurchaseResult>): Promise<PayResult> {
    const paymentKey = p.key;
    let bought: PurchaseResult;
    try {
      bought = await buying;
    } catch (e) {
      this.committedNow.delete(paymentKey);
      const error = toError(e);
      // Charged with a problem (the merchant holds the accept, the content is not what it signed).
      const booked = await this.bookedReceipt(p).catch(() => undefined);
      if (booked?.status === 'disputable') return this.finishFromReceipt(p, booked);
      // The bank cannot reserve the deposit: the purchase waits for the shopper to top up, then resumes.
      if (live && error.name === 'INSUFFICIENT_FUNDS') return this.needsTopUp(p);
      if (isRefusal(error)) {
        // A refusal: nothing was charged for it. (No answer: the reservation stays until it is known.)
        await release(this.db, { paymentKey, error: error.toJSON(), now: this.now() });
        await this.log({ kind: 'failed', origin: p.origin, text: `${p.productId}: ${error.message}`, amount: p.price });
      }
      this.changed();
      throw error;
    }
    // Committed inside the booking (its transaction is complete once buy returned): answered as it is.
    const committed = this.committedNow.get(paymentKey);
    this.committedNow.delete(paymentKey);
    if (committed && committed.receiptId === bought.receipt.receiptId) {
      this.changed();
      return committed;
    }
    return this.finish(p, bought.receipt, { content: toBase64Url(bought.content), contentType: bought.contentType });
  }

  /**
   * The "needs the shopper: top-up" state: the purchase keeps its reservation and is stored as
   * waiting for funds (so a stopped worker finds it again: the page's resent request, or the
   * top-up itself, resumes it); the shopper is shown the top-up; once one lands the purchase is
   * bought as it was authorized, without asking again.
   */
  private async needsTopUp(p: PaymentRecord): Promise<PayResult> {
    await this.savePayment(p.key, { state: 'needs-top-up' });
    await this.log({ kind: 'failed', origin: p.origin, text: `${p.productId}: waiting for a top-up`, amount: p.priceCustomer ?? p.price });
    this.changed();
    await this.o.platform.showTopUp?.();
    return this.complete(p.key, true, true);
  }

  /**
   * Waits until a top-up lands or the balance covers a deposit (at most TOP_UP_WAIT_MS since the
   * purchase began to wait, also across a restart); then the purchase is authorized again.
   */
  private async waitForFunds(p: PaymentRecord): Promise<void> {
    const deadline = p.updatedAt + TOP_UP_WAIT_MS;
    for (;;) {
      const left = deadline - this.now();
      if (left > 0 && (await this.balanceCoversDeposit())) break;
      if (left <= 0) {
        const error = new ObolError('INSUFFICIENT_FUNDS', 'your balance does not cover a deposit and no top-up came: nothing was paid');
        await release(this.db, { paymentKey: p.key, error: error.toJSON(), now: this.now() });
        this.changed();
        throw error;
      }
      const waiters = this.topUpWaiters;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, TOP_UP_POLL_MS));
        waiters.add(done);
      });
    }
    await this.savePayment(p.key, { state: 'authorized' });
  }

  /** Can the account cover the next deposit (the low-balance rule)? Unknown (no answer from the bank) counts as yes. */
  private async balanceCoversDeposit(): Promise<boolean> {
    const account = await this.requireAccount();
    const deposit = this.depositSize(account.currency);
    if (!deposit) return true;
    try {
      const b = await this.agent.balance();
      return compare(parseAmount(b.available), parseAmount(deposit)) >= 0;
    } catch {
      return true;
    }
  }

  /** The page's answer for a delivered purchase; committed already when the agent booked it. */
  private async finish(p: PaymentRecord, receipt: ReceiptRecord, delivery: { content: string; contentType: string }): Promise<PayResult> {
    const result = payResultOf(receipt, delivery);
    const now = this.now();
    // Committed here only when the agent booked the purchase without naming this record (a receipt
    // from before receipts named their purchase); the activity line comes with the commit, once.
    await this.db.transaction(['sites', 'reservations', 'payments', 'activity'], 'readwrite', async (t) => {
      if ((await commitIn(t, { paymentKey: p.key, result, receiptKey: receiptKeyOf(receipt), now })) === 'done') await t.store('activity').add(paidActivity(p, receipt, now));
    });
    this.changed();
    return (await this.paymentRecord(p.key))?.result ?? result;
  }

  /**
   * Inside the agent's booking of a purchase (the receipt, its content and the transaction record
   * in one database transaction): the purchase record the receipt names is done — or failed, when
   * the merchant holds the accept but delivered something else — and its reservation becomes
   * spending at the site. The budget, the purchase record and the transaction record change
   * together or not at all.
   */
  private async booked(t: WalletTransaction<StoreName>, receipt: ReceiptRecord, delivery: { content: string; contentType: string } | undefined): Promise<void> {
    if (receipt.purchaseId === undefined) return;
    const p = await t.store('payments').get(receipt.purchaseId);
    if (!p) return;
    const now = this.now();
    const result = receipt.status === 'delivered' && delivery ? payResultOf(receipt, delivery) : undefined;
    const outcome = result ? { result } : { error: disputeError(receipt).toJSON() };
    // The purchase in the shopper's currency as her bank will book it (the step it adds to the session's withdrawal).
    const tx = await t.store('transactions').index('byTransactionId').get(receipt.transactionId);
    const chargedCustomer = tx?.rate ? formatAmount(purchaseInCustomerCurrency(tx.depositCustomer, tx.rate, receipt.accept.body.cumulative, receipt.price)) : undefined;
    const request = { paymentKey: p.key, receiptKey: receiptKeyOf(receipt), now, ...(chargedCustomer ? { chargedCustomer } : {}), ...outcome };
    if ((await commitIn(t, request)) === 'done') {
      await t.store('activity').add(paidActivity({ ...p, ...(chargedCustomer ? { priceCustomer: chargedCustomer } : {}) }, receipt, now));
      if (result && this.committedNow.has(p.key)) this.committedNow.set(p.key, result);
    }
  }

  /**
   * The receipt the agent booked for this purchase record (the agent writes the record's id on
   * it), when charged: 'delivered', or 'disputable' (the merchant holds the accept).
   * 'awaiting-key' is not final: the agent's next buy of the same purchase resends the stored
   * accept and gets the key.
   */
  private async bookedReceipt(p: PaymentRecord): Promise<ReceiptRecord | undefined> {
    const receipts = await readStore(this.db, 'receipts', (s) => s.index('byPurchase').getAll(p.key));
    return receipts.find((r) => r.status === 'delivered' || r.status === 'disputable');
  }

  /** Finishes a payment from its receipt: the content kept beside it, or decrypted again by the agent. */
  private async finishFromReceipt(p: PaymentRecord, receipt: ReceiptRecord): Promise<PayResult> {
    if (receipt.status !== 'delivered') {
      const error = disputeError(receipt);
      await commit(this.db, { paymentKey: p.key, receiptKey: receiptKeyOf(receipt), error: error.toJSON(), now: this.now() });
      this.changed();
      throw error;
    }
    const kept = await readStore(this.db, 'deliveries', (s) => s.get([receipt.transactionId, receipt.n]));
    if (kept) return this.finish(p, receipt, kept);
    const opened = await this.agent.openReceipt({ transactionId: receipt.transactionId, n: receipt.n });
    return this.finish(p, receipt, { content: toBase64Url(opened.content), contentType: opened.contentType });
  }

  /** Is the agent in the middle of this very purchase (an order or accept stored for it)? */
  private async hasPending(p: PaymentRecord): Promise<boolean> {
    return (await this.store.listTransactions()).some((tx) => tx.state === 'open' && tx.pending?.purchaseId === p.key);
  }

  // ───────────────────────── private calls (extension pages) ─────────────────────────

  async tableState(): Promise<TableState> {
    if (!(await this.store.getAccount())) return { status: 'missing' };
    const r = await this.agent.exchangeTable();
    if (r.status !== 'unavailable') {
      return { status: r.status, issuedAt: r.table.issuedAt, expiresAt: r.table.expiresAt, base: r.table.base, rates: r.table.rates };
    }
    if (!r.table) return { status: 'missing', error: r.error };
    return { status: 'unavailable', issuedAt: r.table.issuedAt, expiresAt: r.table.expiresAt, base: r.table.base, rates: r.table.rates, error: r.error };
  }

  async overview(): Promise<Overview> {
    await this.start();
    const account = await this.agent.account();
    if (!account) return {};
    const out: Overview = { account, table: await this.tableState() };
    try {
      out.balance = await this.agent.balance();
      const deposit = this.depositSize(account.currency);
      // The low-balance notice: the next session's deposit would not fit in what is available.
      if (deposit && compare(parseAmount(out.balance.available), parseAmount(deposit)) < 0) out.lowBalance = { available: out.balance.available, deposit };
    } catch (e) {
      out.balanceError = toError(e).toJSON();
    }
    const waiting = await readStore(this.db, 'payments', (s) => s.index('byState').getAll('needs-top-up'));
    if (waiting.length) {
      out.needsTopUp = [];
      for (const p of waiting) {
        // The product's title as the merchant signed it, when a window showed it (never the page's words).
        const promptId = p.promptId;
        const title = promptId ? (await this.promptRecord(promptId))?.signed?.title : undefined;
        out.needsTopUp.push({ origin: p.origin, productId: p.productId, price: p.price, ...(p.priceCustomer ? { priceCustomer: p.priceCustomer } : {}), ...(title ? { title } : {}) });
      }
    }
    return out;
  }

  /**
   * Registers at an operator whose certificate chains to a built-in root, or — when the shopper
   * pasted one in onboarding, under its warning — to that root. A root added so is kept with the
   * account (`rootAddedByShopper`) and trusted for this account only; it never widens what the
   * wallet trusts for anyone else, and web pages cannot reach this call (extension pages only).
   */
  async register(operatorUrl: string, trustedRootPem?: string): Promise<Overview> {
    await this.start();
    const added = trustedRootPem === undefined ? [] : shopperRoots(trustedRootPem);
    const agent = added.length ? this.makeAgent(undefined, added) : this.agent;
    const view: AccountView = await agent.register(operatorUrl);
    const account = await this.store.getAccount();
    const own = account && added.includes(account.rootCert) && !this.o.trustedRoots.includes(account.rootCert);
    if (account && own) await this.store.putAccount({ ...account, rootAddedByShopper: true });
    this.agentInstance = this.makeAgent(view.currency, own && account ? [account.rootCert] : []);
    await this.log({ kind: 'registered', text: `registered at ${view.operatorName} (${view.operatorId}) as ${view.customerId}`, subject: view.operatorName });
    this.changed();
    return this.overview();
  }

  async topUp(amountText: string): Promise<Overview> {
    await this.start();
    const account = await this.requireAccount();
    const a = parseTopUp(amountText, account.currency);
    await this.agent.demoTopUp(formatAmount(a));
    await this.log({ kind: 'top-up', text: 'demo top-up', amount: formatAmount(a) });
    this.resumeAfterTopUp();
    this.changed();
    return this.overview();
  }

  /** Wakes the purchases waiting for funds; those a stopped worker left (no one waits in this life) are resumed here. */
  private resumeAfterTopUp(): void {
    const waiting = [...this.topUpWaiters];
    this.topUpWaiters.clear();
    for (const wake of waiting) wake();
    void readStore(this.db, 'payments', (s) => s.index('byState').getAll('needs-top-up')).then((left) => {
      for (const p of left) if (!this.running.has(p.key)) void this.track(p.key, () => this.complete(p.key, true, true)).catch(() => undefined);
    });
  }

  async sessions(): Promise<SessionItem[]> {
    await this.start();
    await this.closeIdleSessions();
    const views = await this.agent.listTransactions();
    return views
      .filter((v) => v.state === 'open' || v.state === 'initiating')
      .map((v) => ({ ...v, ...inCustomerCurrency(v) }))
      .reverse();
  }

  async endSession(transactionId: string): Promise<TransactionView & { summary: SessionSummary }> {
    await this.start();
    const view = await this.agent.endTransaction(transactionId);
    const summary = await this.sessionSummary(transactionId);
    await this.log({ kind: 'session-ended', text: `ended the session ${transactionId} at ${view.merchantName}`, subject: view.merchantName, amount: summary.spent });
    this.changed();
    return { ...view, summary };
  }

  /**
   * A session's figures as the shopper sees them at its end: spent, returned and each receipt, in
   * her currency by the bank's rule (figures.ts), so they equal its withdrawal record.
   */
  async sessionSummary(transactionId: string): Promise<SessionSummary> {
    await this.start();
    const view = await this.agent.transaction(transactionId);
    if (!view?.transactionId) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${transactionId} in this wallet`);
    const receipts = await readStore(this.db, 'receipts', (s) => s.getAll());
    const charged = receipts.filter((r) => r.transactionId === transactionId && r.status !== 'not-charged');
    return sessionSummary(
      {
        transactionId: view.transactionId,
        merchantName: view.merchantName,
        depositCustomer: view.depositCustomer,
        cumulative: view.cumulative,
        ...(view.total ? { total: view.total } : {}),
        ...(view.rate ? { rate: view.rate } : {}),
      },
      charged.map((r) => ({ n: r.n, productId: r.productId, title: r.title, price: r.price, cumulative: r.accept.body.cumulative })),
    );
  }

  /**
   * Ends open sessions idle longer than the shopper's setting (no purchase, nothing in flight), so
   * their unused deposit comes back without her asking. Run on the extension's alarm (`tick`) and
   * whenever the sessions are listed.
   */
  async closeIdleSessions(): Promise<TransactionView[]> {
    const account = await this.store.getAccount();
    if (!account) return [];
    const minutes = account.settings?.idleCloseMinutes ?? DEFAULT_IDLE_CLOSE_MINUTES;
    if (minutes <= 0) return [];
    const idleSince = this.now() - minutes * 60_000;
    const ended: TransactionView[] = [];
    for (const tx of await this.store.listTransactions()) {
      if (tx.state !== 'open' || !tx.transactionId || tx.pending || tx.updatedAt > idleSince) continue;
      try {
        const view = await this.agent.endTransaction(tx.transactionId);
        const summary = await this.sessionSummary(tx.transactionId);
        await this.log({ kind: 'session-ended', text: `ended the idle session ${tx.transactionId} at ${view.merchantName}: ${summary.returned} back`, amount: summary.spent });
        ended.push(view);
      } catch {
        // Unreachable now: the next tick tries again; the operators' timers return the deposit anyway.
      }
    }
    if (ended.length) this.changed();
    return ended;
  }

  /** The extension's periodic alarm: idle sessions end. */
  async tick(): Promise<{ ended: number }> {
    await this.start();
    return { ended: (await this.closeIdleSessions()).length };
  }

  /** The shopper's settings, with the defaults and limits the settings page shows. */
  async settings(): Promise<WalletSettingsView> {
    await this.start();
    const account = await this.requireAccount();
    return settingsView(account, this.depositSize(account.currency), (this.o.deposits ?? DEFAULT_DEPOSITS)[account.currency]);
  }

  /** Changes the shopper's settings: a deposit within the limits (INVALID_AMOUNT says which), an idle time in minutes. */
  async setSettings(p: OperationPayload<'setSettings'>): Promise<WalletSettingsView> {
    await this.start();
    const account = await this.requireAccount();
    const settings = { ...account.settings };
    if (p.deposit !== undefined) {
      const deposit = parseTopUp(String(p.deposit), account.currency);
      const limits = DEPOSIT_LIMITS[account.currency];
      if (limits && (compare(deposit, parseAmount(limits.min)) < 0 || compare(deposit, parseAmount(limits.max)) > 0)) {
        throw new ObolError('INVALID_AMOUNT', `a deposit is between ${limits.min} and ${limits.max}`);
      }
      settings.deposit = formatAmount(deposit);
    }
    if (p.idleCloseMinutes !== undefined) {
      const m = p.idleCloseMinutes;
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m > MAX_IDLE_CLOSE_MINUTES) {
        throw new ObolError('MALFORMED', `idle sessions end after 0 (never) to ${MAX_IDLE_CLOSE_MINUTES} minutes`);
      }
      settings.idleCloseMinutes = m;
    }
    const next: AccountRecord = { ...account, settings };
    await this.store.putAccount(next);
    this.chosenDeposit = settings.deposit;
    await this.log({ kind: 'site-changed', text: `settings: deposit ${this.depositSize(account.currency) ?? 'the first price'}, idle sessions end after ${settings.idleCloseMinutes ?? DEFAULT_IDLE_CLOSE_MINUTES} min` });
    this.changed();
    return settingsView(next, this.depositSize(account.currency), (this.o.deposits ?? DEFAULT_DEPOSITS)[account.currency]);
  }

  async history(): Promise<History> {
    await this.start();
    // Refunds after clearing are learnt from our operator when the history is looked at; without
    // an account or a connection the history shows what the wallet already knows.
    await this.agent.refreshRefunds().catch(() => 0);
    const transactions = await this.agent.listTransactions();
    const { receipts, delivered, activity } = await this.db.transaction(['receipts', 'deliveries', 'activity'], 'readonly', async (t) => ({
      receipts: await t.store('receipts').getAll(),
      delivered: await t.store('deliveries').getAllKeys(),
      activity: await t.store('activity').index('byTime').getAll(),
    }));
    const kept = new Set(delivered.map(([t, n]) => `${t}#${n}`));
    receipts.sort((x, y) => x.time - y.time || x.n - y.n);
    const inCustomer = receiptsInCustomerCurrency(transactions, receipts);
    return {
      receipts: receipts.reverse().map((receipt) => {
        const item: HistoryItem = { receipt, merchantName: receipt.merchantName, hasContent: receipt.status === 'delivered' || kept.has(receiptKeyOf(receipt)) };
        const priceCustomer = inCustomer.get(receiptKeyOf(receipt));
        if (priceCustomer) item.priceCustomer = priceCustomer;
        return item;
      }),
      transactions: transactions.reverse(),
      activity: activity.reverse().slice(0, 50),
      evidence: true,
    };
  }

  async content(transactionId: string, n: number): Promise<{ content: string; contentType: string } | null> {
    const d = await readStore(this.db, 'deliveries', (s) => s.get([transactionId, n]));
    if (d) return { content: d.content, contentType: d.contentType };
    try {
      const opened = await this.agent.openReceipt({ transactionId, n });
      return { content: toBase64Url(opened.content), contentType: opened.contentType };
    } catch {
      return null;
    }
  }

  async sites(): Promise<SiteItem[]> {
    await this.start();
    const account = await this.store.getAccount();
    const sites = await readStore(this.db, 'sites', (s) => s.getAll());
    const out: SiteItem[] = [];
    const now = this.now();
    for (const stored of sites) {
      const s = asOf(stored, now); // a period that ended shows as renewed (booked so at the next purchase)
      const item: SiteItem = { ...s, reserved: await heldAt(this.db, s.origin, account?.currency ?? parseAmount(s.budget).currency) };
      const renews = renewsAt(s, now);
      if (renews !== undefined) item.renewsAt = renews;
      out.push(item);
    }
    return out;
  }

  async setSite(p: OperationPayload<'setSite'>): Promise<SiteItem[]> {
    const account = await this.requireAccount();
    const budget = p.budget === undefined ? undefined : parseTopUp(p.budget, account.currency, true);
    const auto = p.autoPayLimit === undefined ? undefined : parseTopUp(p.autoPayLimit, account.currency, true);
    const period = p.period === undefined ? undefined : parsePeriod(p.period);
    const now = this.now();
    const next = await writeStore(this.db, 'sites', async (sites) => {
      const stored = await sites.get(p.origin);
      if (!stored) return undefined;
      const next = { ...asOf(stored, now), updatedAt: now };
      if (period === 'none') {
        delete next.period;
        delete next.periodStart;
      } else if (period !== undefined && period !== next.period) {
        // A new period starts now; what was spent so far counts in it.
        next.period = period;
        next.periodStart = now;
      }
      if (budget) next.budget = formatAmount(budget);
      if (auto) next.autoPayLimit = formatAmount(auto);
      if (p.blocked !== undefined) next.blocked = p.blocked;
      if (p.resetSpent) next.spent = formatAmount(amount(account.currency, 0n));
      await sites.put(next);
      return next;
    });
    if (!next) throw new ObolError('MALFORMED', `no rules for ${p.origin} yet: they are made at the first purchase there`);
    await this.log({ kind: 'site-changed', origin: p.origin, text: `budget ${next.budget}${next.period ? ` per ${next.period}` : ''}, auto-pay up to ${next.autoPayLimit}${next.blocked ? ', blocked' : ''}` });
    this.changed();
    return this.sites();
  }

  /** Sites whose "no" still holds (the popup's blocked list). */
  async declinedSites(): Promise<DeclinedSite[]> {
    await this.start();
    return declinedSites(this.db, this.now());
  }

  /** "Allow again" in the popup: the site may ask again (the page-load blocks of it go too). */
  async allowAgain(origin: string): Promise<DeclinedSite[]> {
    await this.start();
    await liftDecline(this.db, origin);
    await writeStore(this.db, 'blocks', async (blocks) => {
      for (const b of await blocks.getAll()) if (b.origin === origin) await blocks.delete([b.origin, b.documentId]);
    });
    await this.log({ kind: 'site-changed', origin, text: 'allowed to ask again' });
    this.changed();
    return declinedSites(this.db, this.now());
  }

  async removeSite(origin: string): Promise<SiteItem[]> {
    await writeStore(this.db, 'sites', (s) => s.delete(origin));
    this.changed();
    return this.sites();
  }

  /** Dispute evidence from the agent (FIG 4). */
  async evidence(transactionId: string, n?: number): Promise<unknown> {
    await this.start();
    return this.agent.exportEvidence({ transactionId, n: n ?? 1 });
  }

  async prompt(id: string): Promise<PromptRecord | null> {
    return (await this.promptRecord(id)) ?? null;
  }

  /** The click in the confirmation window (the only way a prompt is accepted). */
  async decide(p: OperationPayload<'decide'>): Promise<{ ok: true }> {
    await this.start();
    const prompt = await this.promptRecord(p.id);
    if (!prompt) throw new ObolError('MALFORMED', 'no such prompt');
    const decision: Decision = { accept: p.accept === true, at: this.now() };
    if (decision.accept) {
      const currency = parseAmount(prompt.priceCustomer).currency;
      if (p.budget !== undefined) decision.budget = formatAmount(parseTopUp(p.budget, currency, true));
      if (p.autoPayLimit !== undefined) decision.autoPayLimit = formatAmount(parseTopUp(p.autoPayLimit, currency, true));
    }
    const standing = await this.recordDecision(p.id, decision);
    // The waiting purchase goes on at once; the window closes meanwhile (it is not on its path).
    const waited = standing ? this.waiters.settle(p.id, standing) : false;
    if (prompt.windowId !== undefined) await this.o.platform.closeWindow(prompt.windowId);
    if (standing && !waited && !standing.accept) {
      // Nobody waits in this life (the worker was stopped meanwhile): the refusal takes effect now;
      // an acceptance waits for the page to resend its request.
      const payment = await this.paymentRecord(prompt.paymentKey);
      if (payment && payment.state === 'prompting') {
        await this.declined(prompt, payment);
        await release(this.db, { paymentKey: payment.key, error: declineError().toJSON(), now: this.now() });
      }
    }
    this.changed();
    return { ok: true };
  }

  /** A confirmation window was closed without a click: that is a no. */
  async windowClosed(windowId: number): Promise<{ ok: true }> {
    const prompt = await readStore(this.db, 'prompts', (s) => s.index('byWindow').get(windowId));
    if (prompt && prompt.status === 'waiting') await this.decide({ id: prompt.id, accept: false });
    return { ok: true };
  }

  operators(): OperatorChoice[] {
    return this.o.operators ?? [];
  }

  /**
   * A purchase the wallet's owner asked for herself (the CLI): no page and no site budget (her own
   * command is the consent), but the same purchase record, receipt and history as a page's.
   */
  async purchase(p: OperationPayload<'purchase'>): Promise<PayResult> {
    await this.start();
    await this.requireAccount();
    const merchantUrl = baseUrl(p.merchantUrl);
    const info = await this.agent.merchantInfo(merchantUrl);
    const origin = info.origins[0];
    if (!origin) throw new ObolError('MERCHANT_NOT_TRUSTED', `merchant ${info.merchantId} names no web origin`);
    const now = this.now();
    const key = `owner ${randomId(16, this.o.crypto ?? defaultCrypto())}`;
    const record: PaymentRecord = { key, origin, merchantUrl, productId: p.productId, price: formatAmount(parseAmount(p.price)), state: 'authorized', createdAt: now, updatedAt: now };
    record.priceCustomer = await this.agent.quote(record.price);
    await writeStore(this.db, 'payments', (s) => s.put(record));
    return this.track(key, () => this.complete(key, true, false));
  }

  /** Purchases waiting for the shopper's answer (the "needs the shopper" state), oldest first. */
  async needsShopper(): Promise<PromptRecord[]> {
    const waiting = await readStore(this.db, 'prompts', (s) => s.index('byStatus').getAll('waiting'));
    return waiting.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Ends every open session: what is left of each deposit goes back. */
  async endAllSessions(): Promise<TransactionView[]> {
    const ended: TransactionView[] = [];
    for (const v of await this.agent.listTransactions()) if (v.state === 'open' && v.transactionId) ended.push(await this.endSession(v.transactionId));
    return ended;
  }

  /** The operator's view of a session; a cleared one is stored as cleared (its clearing shown in history). */
  async settlement(transactionId: string): Promise<TransactionView> {
    await this.start();
    await this.agent.transactionStatus(transactionId);
    const view = await this.agent.transaction(transactionId);
    if (!view) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${transactionId} in this wallet`);
    return view;
  }

  /** Every operation, by name: the table `handleCoreApiRequest` dispatches on. */
  private readonly handlers: OperationHandlers = {
    getInfo: (p) => this.getInfo(p.caller),
    quote: (p) => this.quote(p.caller, p.params),
    pay: (p) => this.pay(p.caller, p.key, p.params),
    purchased: (p) => this.purchased(p.caller, p.params),
    open: (p) => this.open(p.caller, p.params),
    overview: () => this.overview(),
    operators: async () => this.operators(),
    register: (p) => this.register(p.operatorUrl, typeof p.trustedRoot === 'string' && p.trustedRoot.trim() ? p.trustedRoot : undefined),
    topUp: (p) => this.topUp(p.amount),
    sessions: () => this.sessions(),
    endSession: (p) => this.endSession(p.transactionId),
    sessionSummary: (p) => this.sessionSummary(p.transactionId),
    settings: () => this.settings(),
    setSettings: (p) => this.setSettings(p),
    tick: () => this.tick(),
    history: () => this.history(),
    content: (p) => this.content(p.transactionId, Number(p.n)),
    sites: () => this.sites(),
    setSite: (p) => this.setSite(p),
    removeSite: (p) => this.removeSite(p.origin),
    declinedSites: () => this.declinedSites(),
    allowAgain: (p) => this.allowAgain(p.origin),
    evidence: (p) => this.evidence(p.transactionId, typeof p.n === 'number' ? p.n : undefined),
    prompt: (p) => this.prompt(p.id),
    decide: (p) => this.decide(p),
    windowClosed: (p) => this.windowClosed(Number(p.windowId)),
    purchase: (p) => this.purchase(p),
    needsShopper: () => this.needsShopper(),
    endAllSessions: () => this.endAllSessions(),
    settlement: (p) => this.settlement(p.transactionId),
  };

  /**
   * The one entry point: every caller (the extension's routers, the CLI, the tests) asks the core
   * through here, by operation name. Bad payloads are catalogue errors (MALFORMED), never crashes.
   */
  handleCoreApiRequest<O extends WalletOperation>(operation: O, payload: OperationPayload<O>): Promise<OperationResult<O>>;
  handleCoreApiRequest(operation: string, payload: unknown): Promise<unknown>;
  handleCoreApiRequest(operation: string, payload: unknown): Promise<unknown> {
    return dispatchOperation(this.handlers, operation as WalletOperation, payload);
  }
}

/**
 * A session's deposit in the customer's currency: spent and left, by the rule the operator books
 * it by at clearing (settleDeposit), so the popup and the bank agree to the minor unit.
 */
export function inCustomerCurrency(v: Pick<TransactionView, 'depositCustomer' | 'cumulative' | 'rate'>): Pick<SessionItem, 'spentCustomer' | 'remainingCustomer'> {
  if (!v.rate) return {};
  const { chargedCustomer, refundCustomer } = settleDeposit(parseAmount(v.depositCustomer), parseAmount(v.cumulative), parseRate(v.rate));
  return { spentCustomer: formatAmount(chargedCustomer), remainingCustomer: formatAmount(refundCustomer) };
}

/** Each charged receipt's price in the customer's currency, by the bank's rule (figures.ts), keyed `${transactionId}#${n}`. */
function receiptsInCustomerCurrency(transactions: TransactionView[], receipts: ReceiptRecord[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of transactions) {
    if (!v.transactionId || !v.rate) continue;
    const id = v.transactionId;
    const mine = receipts.filter((r) => r.transactionId === id && r.status !== 'not-charged');
    if (!mine.length) continue;
    const summary = sessionSummary(
      { transactionId: id, merchantName: v.merchantName, depositCustomer: v.depositCustomer, cumulative: v.cumulative, rate: v.rate },
      mine.map((r) => ({ n: r.n, productId: r.productId, title: r.title, price: r.price, cumulative: r.accept.body.cumulative })),
    );
    for (const r of summary.receipts) out.set(`${id}#${r.n}`, r.priceCustomer);
  }
  return out;
}

function settingsView(account: AccountRecord, deposit: string | undefined, defaultDeposit: string | undefined): WalletSettingsView {
  const view: WalletSettingsView = {
    currency: account.currency,
    idleCloseMinutes: account.settings?.idleCloseMinutes ?? DEFAULT_IDLE_CLOSE_MINUTES,
    maxIdleCloseMinutes: MAX_IDLE_CLOSE_MINUTES,
  };
  if (deposit) view.deposit = deposit;
  if (defaultDeposit) view.defaultDeposit = defaultDeposit;
  const limits = DEPOSIT_LIMITS[account.currency];
  if (limits) view.depositLimits = limits;
  return view;
}

function receiptKeyOf(r: { transactionId: string; n: number }): string {
  return `${r.transactionId}#${r.n}`;
}

/** What the page is told of a delivered purchase. */
function payResultOf(receipt: ReceiptRecord, delivery: { content: string; contentType: string }): PayResult {
  return {
    // The page is the merchant's: it gets the merchant's name for the transaction only.
    transactionId: receipt.handle,
    n: receipt.n,
    productId: receipt.productId,
    price: receipt.price,
    content: delivery.content,
    contentType: delivery.contentType,
    contentHash: receipt.contentHash,
    receiptId: receipt.accept.body.acceptId,
  };
}

/** Charged (the merchant holds the accept) for something else than it signed: the receipt is the evidence. */
function disputeError(receipt: ReceiptRecord): ObolError {
  return new ObolError('PRODUCT_MISMATCH', `${receipt.problem?.message ?? 'the merchant did not deliver what it signed'}; receipt ${receipt.receiptId} holds the evidence for a dispute`);
}

function paidActivity(p: PaymentRecord, receipt: ReceiptRecord, time: number): ActivityRecord {
  return { kind: 'paid', origin: p.origin, text: `${receipt.productId} (${receipt.transactionId} #${receipt.n})`, subject: receipt.title, amount: p.priceCustomer ?? p.price, time };
}

/**
 * The shopper said no: the page hears "you declined", whatever the window asked about. An
 * over-budget purchase she declined is her decision, not the budget's (the budget is only why
 * she was asked).
 */
function declineError(): ObolError {
  return new ObolError('USER_REJECTED', 'you declined the payment');
}

/** Root certificates the shopper pasted (PEM, one or a bundle): roots only, as base64url DER. */
function shopperRoots(pem: string): string[] {
  const certs = parseCertBundle(pem);
  for (const c of certs) {
    if (describeCert(c).kind !== 'root') throw new ObolError('CERT_WRONG_KIND', 'paste the interbank root certificate of your operator, not another certificate');
  }
  return certs.map(certToBase64);
}

/** "50", "50,00" or "SEK:50.00" in `currency`; positive (or zero when `zeroOk`). */
export function parseTopUp(text: string, currency: string, zeroOk = false): Amount {
  const t = text.trim();
  const a = /^[A-Z]{3}:/.test(t) ? parseAmount(t) : parseDecimal(currency, t);
  if (a.currency !== currency) throw new ObolError('CURRENCY_MISMATCH', `amounts here are in ${currency}`);
  if (a.value < 0n || (!zeroOk && a.value === 0n)) throw new ObolError('INVALID_AMOUNT', 'the amount must be more than zero');
  return a;
}
