import type { BridgeResults } from './bridgeWire.ts';
import type { ObolErrorJson } from './errors.ts';
import type { ExchangeTable } from './exchangeTable.ts';
import type { PurchaseLine, PurchaseOpening } from './purchaseList.ts';
import type { Signed } from './signed.ts';
import { MemoryWalletDatabase, type StoreName, type WalletDatabase, type WalletTransaction, readStore, writeStore } from './walletDatabase.ts';

/**
 * The wallet's persistent state, behind an interface: the extension backs it with IndexedDB, the
 * tests and the CLI with memory (or a file). Everything the customer agent knows lives here and
 * nowhere else, because the browser may stop the service worker between any two awaits.
 *
 * Records are plain structured-cloneable data: wire strings for money ("EUR:0.05"), numbers for
 * times (ms since the epoch) and CryptoKeys for keys. Private keys are non-extractable CryptoKeys,
 * which IndexedDB stores as they are and nobody can read out.
 *
 * A store must keep what it is given as it was given (a copy, as IndexedDB does): the agent
 * always writes a whole record back after changing it.
 */

/** The wallet's account at its operator (after registration). One per wallet. */
export interface AccountRecord {
  /** Base URL of the operator server, without a trailing slash. */
  operatorUrl: string;
  operatorId: string;
  operatorName: string;
  /** The customer's currency: the operator's currency, the currency of balances and deposits. */
  currency: string;
  customerId: string;
  /** The long-term key pair; the private key is non-extractable. */
  keys: CryptoKeyPair;
  /** Base64url SPKI of the long-term public key, and its key id (the `kid` of everything it signs). */
  publicKey: string;
  kid: string;
  /** Base64url DER certificates: ours (customer), our operator's, and the interbank root. */
  customerCert: string;
  operatorCert: string;
  rootCert: string;
  /**
   * Our operator's message-signing certificate (issued by operatorCert): the key its exchange
   * tables and acks must verify under. Absent in accounts made before operators had one; the agent
   * then fetches it from the operator's information and checks it against operatorCert.
   */
  operatorSigningCert?: string;
  /**
   * Set when `rootCert` is not one the wallet was built with but one the shopper added herself at
   * registration (a custom operator, after an explicit warning): the wallet trusts it for this
   * account only.
   */
  rootAddedByShopper?: boolean;
  /** The shopper's own settings (deposit size, idle sessions): walletSettings.ts. */
  settings?: WalletSettings;
  registeredAt: number;
}

/** What the shopper chose in the wallet's settings (absent: the wallet's defaults). */
export interface WalletSettings {
  /** The deposit a new session opens with, customer currency ("SEK:50.00"); at least the first price. */
  deposit?: string;
  /** Open sessions idle this long are ended, so the unused deposit comes back (minutes; 0: never). */
  idleCloseMinutes?: number;
}

/** The logged-on relation with the operator (SessionIdentity) and its bearer token. */
export interface LoginRecord {
  sessionId: string;
  token: string;
  expiresAt: number;
}

/** The operator's exchange table, verified, with the signed message it came in. */
export interface TableRecord {
  table: ExchangeTable;
  signed: Signed<'operator.exchangeTable'>;
  fetchedAt: number;
}

/**
 * - initiating: the signed initiation is stored and may have been sent; resend the same one.
 * - open: the operator acknowledged; purchases may be made.
 * - closed: the session ended (wallet, merchant or timer); the customer record is still to be sent.
 * - reported: the customer record reached the operator; clearing pending.
 * - cleared: clearing information arrived.
 * - failed: the operator refused the initiation; no deposit was reserved.
 */
export type TransactionState = 'initiating' | 'open' | 'closed' | 'reported' | 'cleared' | 'failed';

export type StopReason = 'wallet' | 'merchant' | 'deposit-used' | 'timer';

/**
 * A purchase in flight (FIG 4). Stored with the chosen signed description before the order is
 * sent; once the delivery (signed encrypted product) has been checked, the signed accept is stored
 * with it BEFORE it is sent, so a restarted agent resends that very accept (the merchant counts an
 * acceptId once) instead of signing a second one, and gets the same key back.
 */
export interface PendingPurchase {
  n: number;
  /** The wallet's purchase record (PaymentRecord.key) this purchase is for, when it has one. */
  purchaseId?: string;
  productId: string;
  price: string;
  origin: string;
  /** The merchant-signed description the shopper chose (checked against the merchant's certificate). */
  description: Signed<'merchant.description'>;
  /** SHA-256 of the description's canonical body: what the order and the accept name. */
  descriptionHash: string;
  order: Signed<'wallet.order'>;
  /** The delivery, once checked: the signed encrypted product and the ciphertext (base64url). */
  product?: Signed<'merchant.product'>;
  ciphertext?: string;
  accept?: Signed<'wallet.accept'>;
}

/** What clearing (FIG 3 step 10) said about a transaction, as far as the wallet learned it. */
export interface ClearingResult {
  outcome?: string;
  flagged?: boolean;
  /** In the merchant's currency. */
  chargedMerchant?: string;
  unusedMerchant?: string;
  /** In the customer's currency, when the operator said so. */
  chargedCustomer?: string;
  refundCustomer?: string;
  /** The signed `acquirer.clearing`, as received. */
  clearing?: unknown;
}

/**
 * A refund after clearing, as the shopper's operator booked it (issue 14): `amount` in her
 * currency at the transaction's pinned rate, `amountMerchant` as the merchant gave it.
 */
export interface RefundEntry {
  /** After clearing: the refund's number in the transaction; before clearing: the purchase refunded. */
  n: number;
  amount: string;
  amountMerchant: string;
  time: number;
  /** A refund line before clearing (issue 14), by the merchant's id for it. */
  beforeClearing?: { refundId: string };
}

/** One deposit at one merchant (a trading session): FIG 2 to FIG 3. */
export interface TransactionRecord {
  /** Local key, chosen by the wallet before the operator assigns the TransactionIdentity. */
  id: string;
  /** The TransactionIdentity, once the operator acknowledged the initiation. */
  /** The TransactionIdentity: how our own operator (and this store) knows the transaction. */
  transactionId?: string;
  /**
   * The trade handle: how the merchant and its operator know it (orders, accepts, stops, the
   * customer record). Random per transaction, so the merchant cannot link our deposits.
   */
  handle?: string;
  state: TransactionState;
  merchantId: string;
  merchantName: string;
  /** Base URL of the merchant module, without a trailing slash. */
  merchantUrl: string;
  merchantOperatorId: string;
  merchantCurrency: string;
  /** The page origin the session was opened for, when there was one. */
  origin?: string;
  /** The session key pair (private non-extractable), its SPKI and key id. */
  sessionKeys: CryptoKeyPair;
  sessionPublicKey: string;
  sessionKid: string;
  /** The signed initiation (step 2), resent unchanged until acknowledged. */
  initiate: Signed<'wallet.initiate'>;
  /** From the acknowledgement (step 7). */
  tempCert?: string;
  merchantCert?: string;
  merchantOrigins?: string[];
  k1: string;
  listSalt: string;
  firstPrice: string;
  /** The deposit in the customer's currency, and in the merchant's at the pinned rate. */
  depositCustomer: string;
  depositMerchant?: string;
  rate?: string;
  timeoutSec: number;
  expiresAt?: number;
  /** The number of the next new order. */
  nextN: number;
  /** Accepted purchases, in order. */
  lines: PurchaseLine[];
  /** Total of the accepted purchases, merchant currency: the cumulative of the latest accept. */
  cumulative: string;
  pending?: PendingPurchase;
  closeReason?: StopReason;
  /** The signed customer record (step 8), stored before it is sent and resent unchanged. */
  record?: Signed<'wallet.record'>;
  clearing?: ClearingResult;
  /** Refunds after clearing, by number, as the operator reported them. */
  refunds?: RefundEntry[];
  /**
   * Refund lines before clearing (issue 14), signed by the merchant and checked: the record's total
   * is `cumulative` minus them, and its list hash covers them (purchaseList.ts).
   */
  refundLines?: Signed<'merchant.refundLine'>[];
  /** Why the transaction failed or was abandoned, for the UI. */
  error?: { name: string; message: string };
  createdAt: number;
  updatedAt: number;
}

/**
 * What became of an accepted purchase:
 * - awaiting-key: the accept was signed and sent (the merchant may hold it and be paid), the key
 *   has not come (yet). The agent asks again (`recover`, the next `buy`); if it never comes, the
 *   evidence (`exportEvidence`) is for a dispute.
 * - delivered: the key came, the content decrypted and matches the signed description.
 * - disputable: the merchant holds the accept, but its key or the content is not what it signed
 *   (`problem` says what): the evidence is for a dispute.
 * - not-charged: the merchant refused the accept: nothing was paid.
 */
export type ReceiptStatus = 'awaiting-key' | 'delivered' | 'disputable' | 'not-charged';

/**
 * One accepted purchase: the shopper's proof of what she paid for, and everything an arbiter needs
 * to judge it (FIG 4): the merchant-signed description, the merchant-signed encrypted product with
 * its ciphertext, the signed accept, the merchant-signed wrapped key, and the certificates that tie
 * the signatures to the merchant and to this transaction's session key.
 */
export interface ReceiptRecord {
  /** The acceptId of the signed accept: unique and time-stamped (the page bridge's `receiptId` too). */
  receiptId: string;
  /** The wallet's purchase record (PaymentRecord.key) that asked for this purchase, when there was one. */
  purchaseId?: string;
  /** The TransactionIdentity (our operator's name for the transaction; receipts are kept by it). */
  transactionId: string;
  /** The trade handle the merchant knows the transaction by (its accept and evidence name it). */
  handle: string;
  n: number;
  status: ReceiptStatus;
  merchantId: string;
  merchantName: string;
  merchantUrl: string;
  merchantOperatorId: string;
  origin: string;
  productId: string;
  title: string;
  price: string;
  /** The merchant-signed description, SHA-256 of the promised plaintext, and its content type. */
  description: Signed<'merchant.description'>;
  contentHash: string;
  contentType: string;
  /** The merchant-signed encrypted product and the ciphertext as received (base64url). */
  product: Signed<'merchant.product'>;
  ciphertext: string;
  /** The signed accept exactly as sent to the merchant. */
  accept: Signed<'wallet.accept'>;
  /**
   * What the accept's commitment opens to, with the transaction's list salt: revealed to an
   * arbiter only (the merchant's operator holds the accept and must not learn what it was for).
   */
  opening: PurchaseOpening & { listSalt: string };
  /** sign_M([K2]^K1), when it came. */
  key?: Signed<'merchant.key'>;
  /** The merchant's certificate re-issued by our operator, the temporary certificate, our operator's. */
  merchantCert: string;
  tempCert: string;
  operatorCert: string;
  /** Why the receipt is disputable or not charged. */
  problem?: { name: string; message: string };
  time: number;
}

// ───────────── The wallet's own records (payments, budgets, prompts, history) ─────────────
// Beside the agent's records above, in the same database (walletDatabase.ts), so a budget, a
// payment and a receipt can change in one transaction.

/** Spending rules of one site (page origin). Money in the customer's currency, wire form. */
export interface SiteRecord {
  origin: string;
  /** The shopper approved this site once (in the confirmation window). */
  approved: boolean;
  /** Most the site may take in all; purchases beyond ask again. */
  budget: string;
  /** Committed spending at the site so far (converted at the time of each purchase). */
  spent: string;
  /** A purchase above this price always asks. */
  autoPayLimit: string;
  /** Blocked by the shopper in the popup: every request is refused (SITE_BLOCKED). */
  blocked: boolean;
  /** The merchant id the certificate named when the shopper approved the site. */
  merchantId?: string;
  /**
   * Rules the shopper chose in a confirmation window whose purchase has not succeeded yet: they
   * count only once it has (commit); if it fails, the site goes back to `before` (or to
   * unapproved). Until then the site is treated by `before`.
   */
  pending?: { paymentKey: string; before?: { approved: boolean; budget: string; autoPayLimit: string } };
  /**
   * The budget renews every day, week or month (from `periodStart`): `spent` is then what was
   * spent in the current period, and the core starts the next period when its clock passes the
   * end (budgetPeriod.ts). Without a period the budget is for all time.
   */
  period?: BudgetPeriod;
  /** When the current period began (wallet clock, ms). */
  periodStart?: number;
  createdAt: number;
  updatedAt: number;
}

export type BudgetPeriod = 'day' | 'week' | 'month';

/**
 * What the shopper's answers mean for a site's windows, across tabs and reloads (consent.ts):
 * a declined window stops further windows until `declinedUntil` or until lifted in the popup;
 * `windows` are the times windows were opened lately (at most a few per minute).
 */
export interface ConsentRecord {
  origin: string;
  declinedUntil?: number;
  declinedAt?: number;
  windows: number[];
}

/** Budget held for a purchase in flight: counted against the budget until committed or released. */
export interface ReservationRecord {
  paymentKey: string;
  origin: string;
  /** Customer currency, wire form. */
  amount: string;
  createdAt: number;
}

/**
 * - new: received, nothing decided yet
 * - prompting: waiting for the shopper in a confirmation window (`promptId`)
 * - authorized: budget reserved; the agent is buying (or will again after a restart)
 * - needs-top-up: authorized, but the bank could not reserve a deposit: it waits for a top-up and
 *   then resumes (the "needs the shopper: top-up" state)
 * - done: paid; `result` is the answer the page gets (again, if it asks again)
 * - failed: `error` is the answer
 */
export type PaymentState = 'new' | 'prompting' | 'authorized' | 'needs-top-up' | 'done' | 'failed';

/** One obol_pay from a page, keyed by the origin and a key the content script chose for it. */
export interface PaymentRecord {
  key: string;
  origin: string;
  documentId?: string;
  merchantUrl: string;
  productId: string;
  /** Merchant currency, wire form. */
  price: string;
  /** The price in the customer's currency at the time of the request. */
  priceCustomer?: string;
  state: PaymentState;
  promptId?: string;
  /** `${transactionId}#${n}` of the receipt this payment produced. */
  receiptKey?: string;
  result?: BridgeResults['obol_pay'];
  error?: ObolErrorJson;
  createdAt: number;
  updatedAt: number;
}

export type PromptKind = 'first' | 'over-budget' | 'over-auto-pay';
export type PromptStatus = 'waiting' | 'accepted' | 'rejected';

/** What a confirmation window shows: every field from the wallet's own state, none from the page. */
export interface PromptRecord {
  id: string;
  origin: string;
  paymentKey: string;
  kind: PromptKind;
  status: PromptStatus;
  windowId?: number;
  /** As the merchant's server calls itself (shown second, labelled). */
  merchantName: string;
  /** From the merchant certificate our operator re-issued (verified). */
  merchantId: string;
  /** The product as the merchant signed it (checked before the window opened); bidi controls neutralised. */
  signed?: { title: string; description: string };
  certifiedOrigins: string[];
  merchantOperatorId: string;
  /** Our bank's display name (the account's operator, from its information at registration). */
  bankName?: string;
  /** The merchant's bank by name, when it is ours (the wallet knows no other bank's name). */
  merchantOperatorName?: string;
  productId: string;
  description?: string;
  price: string;
  priceCustomer: string;
  deposit: {
    transactionId?: string;
    customer: string;
    merchant?: string;
    remaining?: string;
    expiresAt?: number;
    /** Opened for this prompt: ended again if the shopper says no. */
    openedForPrompt: boolean;
  };
  site?: { budget: string; spent: string; reserved: string; autoPayLimit: string };
  suggested: { budget: string; autoPayLimit: string };
  /** The least budget that lets this purchase through. */
  needed: string;
  table: { status: string; issuedAt?: number; expiresAt?: number };
  decision?: { accept: boolean; budget?: string; autoPayLimit?: string; at: number };
  createdAt: number;
}

/** A page load that rejected a prompt: no more prompts for it until it reloads. */
export interface BlockRecord {
  origin: string;
  documentId: string;
  createdAt: number;
}

/** The delivered content of a purchase, kept beside its receipt (so it survives a restart). */
export interface DeliveryRecord {
  transactionId: string;
  n: number;
  content: string;
  contentType: string;
}

export type ActivityKind = 'registered' | 'top-up' | 'paid' | 'rejected' | 'failed' | 'session-ended' | 'site-changed';

export interface ActivityRecord {
  id?: number;
  time: number;
  kind: ActivityKind;
  origin?: string;
  /** The wallet's own line, with the ids (for the details view and the CLI). */
  text: string;
  /** What it was about in the shopper's words: the product's signed title or the merchant's name. */
  subject?: string;
  amount?: string;
}

export interface WalletStore {
  getAccount(): Promise<AccountRecord | undefined>;
  putAccount(account: AccountRecord): Promise<void>;
  getLogin(): Promise<LoginRecord | undefined>;
  /** `undefined` forgets the login. */
  putLogin(login: LoginRecord | undefined): Promise<void>;
  getTable(): Promise<TableRecord | undefined>;
  putTable(table: TableRecord): Promise<void>;
  /** By TransactionIdentity (an IndexedDB index); a transaction still initiating has none. */
  getTransaction(transactionId: string): Promise<TransactionRecord | undefined>;
  /** Insert or replace by `id`. */
  putTransaction(tx: TransactionRecord): Promise<void>;
  /** All transactions, oldest first. */
  listTransactions(): Promise<TransactionRecord[]>;
  /** Insert or replace by (transactionId, n): adding the same receipt twice keeps one. */
  addReceipt(receipt: ReceiptRecord): Promise<void>;
  /**
   * The transaction record with its signed accept stored, and the purchase's 'awaiting-key'
   * receipt, in one step (one durable write before the accept is sent, not two): a wallet stopped
   * at any point finds both or neither, and `completeAccept` writes the receipt again anyway.
   */
  storeAccept(tx: TransactionRecord, receipt: ReceiptRecord): Promise<void>;
  /**
   * A purchase the merchant now holds the accept of, booked in one step: its final receipt, the
   * delivered content beside it (when it came), and the transaction record with the purchase
   * counted. A wallet stopped at any point finds all of it or none.
   */
  bookPurchase(receipt: ReceiptRecord, tx: TransactionRecord, delivery?: { content: string; contentType: string }): Promise<void>;
  /** Receipts, oldest first; of one transaction when given. */
  listReceipts(transactionId?: string): Promise<ReceiptRecord[]>;
}

/**
 * What else changes in the transaction that books a purchase: the wallet core commits the purchase
 * record and the site budget that asked for it there (budget.ts), so the three never disagree.
 */
export interface BookingHook<S extends StoreName> {
  stores: readonly S[];
  booked(tx: WalletTransaction<S>, receipt: ReceiptRecord, delivery: { content: string; contentType: string } | undefined): Promise<void>;
}

/**
 * The agent's store on the wallet's database (walletDatabase.ts): IndexedDB in the extension,
 * memory in the CLI and the tests — one implementation for both.
 */
export class DatabaseWalletStore implements WalletStore {
  constructor(
    readonly db: WalletDatabase,
    private readonly booking?: BookingHook<StoreName>,
  ) {}

  /**
   * The account as last read: read by nearly every call of the wallet (several times per purchase)
   * and changed only through `putAccount`, which drops it. Never mutated by its readers.
   */
  private account: Promise<AccountRecord | undefined> | undefined;

  getAccount(): Promise<AccountRecord | undefined> {
    if (!this.account) {
      const read = readStore(this.db, 'account', (s) => s.get('current'));
      this.account = read;
      read.catch(() => {
        if (this.account === read) this.account = undefined; // a failed read is not kept
      });
    }
    return this.account;
  }
  async putAccount(account: AccountRecord): Promise<void> {
    this.account = undefined;
    try {
      await writeStore(this.db, 'account', (s) => s.put(account, 'current'));
    } finally {
      this.account = undefined; // read again after the write, whatever was read meanwhile
    }
  }
  getLogin(): Promise<LoginRecord | undefined> {
    return readStore(this.db, 'login', (s) => s.get('current'));
  }
  putLogin(login: LoginRecord | undefined): Promise<void> {
    return writeStore(this.db, 'login', (s) => (login === undefined ? s.delete('current') : s.put(login, 'current')));
  }
  getTable(): Promise<TableRecord | undefined> {
    return readStore(this.db, 'exchangeTable', (s) => s.get('current'));
  }
  putTable(table: TableRecord): Promise<void> {
    return writeStore(this.db, 'exchangeTable', (s) => s.put(table, 'current'));
  }
  getTransaction(transactionId: string): Promise<TransactionRecord | undefined> {
    return readStore(this.db, 'transactions', (s) => s.index('byTransactionId').get(transactionId));
  }
  putTransaction(tx: TransactionRecord): Promise<void> {
    return writeStore(this.db, 'transactions', (s) => s.put(tx));
  }
  listTransactions(): Promise<TransactionRecord[]> {
    return readStore(this.db, 'transactions', (s) => s.index('byCreatedAt').getAll());
  }
  addReceipt(receipt: ReceiptRecord): Promise<void> {
    return writeStore(this.db, 'receipts', (s) => s.put(receipt));
  }
  storeAccept(tx: TransactionRecord, receipt: ReceiptRecord): Promise<void> {
    return this.db.transaction(['transactions', 'receipts'], 'readwrite', async (t) => {
      await t.store('transactions').put(tx);
      await t.store('receipts').put(receipt);
    });
  }
  bookPurchase(receipt: ReceiptRecord, tx: TransactionRecord, delivery?: { content: string; contentType: string }): Promise<void> {
    const hook = this.booking;
    const stores: StoreName[] = ['receipts', 'deliveries', 'transactions', ...(hook?.stores ?? [])];
    return this.db.transaction(stores, 'readwrite', async (t) => {
      if (delivery) await t.store('deliveries').put({ transactionId: receipt.transactionId, n: receipt.n, ...delivery });
      await t.store('receipts').put(receipt);
      await t.store('transactions').put(tx);
      await hook?.booked(t, receipt, delivery);
    });
  }
  async listReceipts(transactionId?: string): Promise<ReceiptRecord[]> {
    const all = await readStore(this.db, 'receipts', (s) => s.getAll());
    return all.filter((r) => transactionId === undefined || r.transactionId === transactionId).sort((a, b) => a.time - b.time || a.n - b.n);
  }
}

/** The store of the tests and the CLI: the same store on the memory database. */
export class MemoryWalletStore extends DatabaseWalletStore {
  constructor(db: WalletDatabase = new MemoryWalletDatabase()) {
    super(db);
  }
}
