import { type DBSchema, type IDBPDatabase, openDB } from 'idb';
import type { BridgeResults } from '@obol/protocol/bridge';
import type { ObolErrorJson } from '@obol/protocol/errors';
import type { AccountRecord, LoginRecord, ReceiptRecord, TableRecord, TransactionRecord } from '@obol/protocol/walletStore';

/**
 * Every piece of the wallet's state, in one IndexedDB database: the service worker may be stopped
 * between any two awaits, so nothing lives only in memory. Each store and index is declared once
 * here with its record type; every transaction names the stores it touches up front.
 */

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
  createdAt: number;
  updatedAt: number;
}

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
 * - done: paid; `result` is the answer the page gets (again, if it asks again)
 * - failed: `error` is the answer
 */
export type PaymentState = 'new' | 'prompting' | 'authorized' | 'done' | 'failed';

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
  text: string;
  amount?: string;
}

export interface WalletSchema extends DBSchema {
  account: { key: 'current'; value: AccountRecord };
  login: { key: 'current'; value: LoginRecord };
  exchangeTable: { key: 'current'; value: TableRecord };
  transactions: { key: string; value: TransactionRecord; indexes: { byTransactionId: string; byCreatedAt: number } };
  receipts: { key: [string, number]; value: ReceiptRecord; indexes: { byTime: number } };
  deliveries: { key: [string, number]; value: DeliveryRecord };
  sites: { key: string; value: SiteRecord };
  reservations: { key: string; value: ReservationRecord; indexes: { byOrigin: string } };
  payments: { key: string; value: PaymentRecord; indexes: { byState: PaymentState; byReceipt: string } };
  prompts: { key: string; value: PromptRecord; indexes: { byStatus: PromptStatus; byWindow: number } };
  blocks: { key: [string, string]; value: BlockRecord };
  consent: { key: string; value: ConsentRecord };
  activity: { key: number; value: ActivityRecord; indexes: { byTime: number } };
}

export type WalletDb = IDBPDatabase<WalletSchema>;

export const DB_NAME = 'obol-wallet';
/** 1: the first stores; 2: `consent` (declines and window rate per site). */
export const DB_VERSION = 2;

export function openWalletDb(name = DB_NAME): Promise<WalletDb> {
  return openDB<WalletSchema>(name, DB_VERSION, {
    upgrade(db, oldVersion) {
      if (oldVersion < 2) db.createObjectStore('consent', { keyPath: 'origin' });
      if (oldVersion >= 1) return;
      db.createObjectStore('account');
      db.createObjectStore('login');
      db.createObjectStore('exchangeTable');
      const tx = db.createObjectStore('transactions', { keyPath: 'id' });
      tx.createIndex('byTransactionId', 'transactionId', { unique: true });
      tx.createIndex('byCreatedAt', 'createdAt');
      const receipts = db.createObjectStore('receipts', { keyPath: ['transactionId', 'n'] });
      receipts.createIndex('byTime', 'time');
      db.createObjectStore('deliveries', { keyPath: ['transactionId', 'n'] });
      db.createObjectStore('sites', { keyPath: 'origin' });
      const reservations = db.createObjectStore('reservations', { keyPath: 'paymentKey' });
      reservations.createIndex('byOrigin', 'origin');
      const payments = db.createObjectStore('payments', { keyPath: 'key' });
      payments.createIndex('byState', 'state');
      payments.createIndex('byReceipt', 'receiptKey', { unique: true });
      const prompts = db.createObjectStore('prompts', { keyPath: 'id' });
      prompts.createIndex('byStatus', 'status');
      prompts.createIndex('byWindow', 'windowId');
      db.createObjectStore('blocks', { keyPath: ['origin', 'documentId'] });
      const activity = db.createObjectStore('activity', { keyPath: 'id', autoIncrement: true });
      activity.createIndex('byTime', 'time');
    },
  });
}
