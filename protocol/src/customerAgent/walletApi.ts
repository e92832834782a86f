import type { BridgeParams, BridgeResults } from '../bridgeWire.ts';
import { ObolError, type ObolErrorJson } from '../errors.ts';
import type { ActivityRecord, PromptRecord, ReceiptRecord, SiteRecord } from '../walletStore.ts';
import type { AccountView, Balance } from './account.ts';
import type { DeclinedSite } from './consent.ts';
import type { SessionSummary } from './figures.ts';
import type { TransactionView } from './transactions.ts';

/**
 * The wallet core's one typed entry point (after GNU Taler's `handleCoreApiRequest`): every
 * operation by name, with its payload and its result. The extension's service worker only
 * dispatches to it (web pages reach the `page` operations, the extension's own pages the
 * `shopper` ones); the CLI and the tests call the same entry point. Results are plain JSON-safe
 * data (money as wire strings).
 */

/** A page, as the browser (not the page) names it. */
export interface PageCaller {
  origin: string;
  /** The browser's id of this page load. */
  documentId?: string;
  /**
   * The request came with a real user gesture on the page, not yet spent on another purchase (the
   * content script's own finding, never the page's word). Without it only the wallet's window pays.
   */
  gesture?: boolean;
}

export interface TableState {
  status: 'valid' | 'refreshed' | 'unavailable' | 'missing';
  issuedAt?: number;
  expiresAt?: number;
  base?: string;
  rates?: Record<string, string>;
  error?: ObolErrorJson;
}

export interface Overview {
  account?: AccountView;
  balance?: Balance;
  balanceError?: ObolErrorJson;
  table?: TableState;
  /** The low-balance notice: what is available does not cover the next session's deposit. */
  lowBalance?: { available: string; deposit: string };
  /** Purchases waiting for a top-up (they resume once one lands). */
  needsTopUp?: Array<{ origin: string; productId: string; price: string; priceCustomer?: string; title?: string }>;
}

/** The shopper's settings as the settings page shows them (customer currency). */
export interface WalletSettingsView {
  currency: string;
  /** The deposit a new session opens with (at least the first price). */
  deposit?: string;
  defaultDeposit?: string;
  depositLimits?: { min: string; max: string };
  /** Open sessions idle this long end (0: never). */
  idleCloseMinutes: number;
  maxIdleCloseMinutes: number;
}

export interface SessionItem extends TransactionView {
  /**
   * Spent and left of the deposit in the customer's currency, by the rule the operator books the
   * session by at clearing (settleDeposit: half-even at the pinned rate), when the rate is known.
   */
  spentCustomer?: string;
  remainingCustomer?: string;
}

export interface HistoryItem {
  receipt: ReceiptRecord;
  merchantName: string;
  /** The wallet kept the content (or can decrypt it again). */
  hasContent: boolean;
  /**
   * The price in the customer's currency as the bank books it: the step this purchase adds to the
   * session's withdrawal (figures.ts), so a session's receipts add up to its withdrawal record.
   */
  priceCustomer?: string;
}

export interface History {
  receipts: HistoryItem[];
  transactions: TransactionView[];
  activity: ActivityRecord[];
  evidence: boolean;
}

export interface SiteItem extends SiteRecord {
  reserved: string;
  /** When a budget with a period renews next (wallet clock, ms). */
  renewsAt?: number;
}

export interface ShopLink {
  name: string;
  url: string;
}

export interface OperatorChoice {
  url: string;
  name: string;
  /** Shops that take this operator's customers, offered on onboarding's ready screen (the demo's). */
  shops?: ShopLink[];
}

export type PayResult = BridgeResults['obol_pay'];

/** Operation → [payload, result]. */
export interface WalletOperations {
  // Web pages (through the bridge; `caller` from the browser, `key` from the content script).
  getInfo: [{ caller: PageCaller }, BridgeResults['obol_getInfo']];
  quote: [{ caller: PageCaller; params: BridgeParams<'obol_quote'> }, BridgeResults['obol_quote']];
  pay: [{ caller: PageCaller; key: string; params: BridgeParams<'obol_pay'> }, PayResult];
  /** Which of these products were bought from this merchant at the caller's own origin (issue 14). */
  purchased: [{ caller: PageCaller; params: BridgeParams<'obol_purchased'> }, BridgeResults['obol_purchased']];
  /** One of them opened again: delivered again by the merchant, nothing charged, no window. */
  open: [{ caller: PageCaller; params: BridgeParams<'obol_open'> }, PayResult];
  // The shopper (the wallet's own pages).
  overview: [{ refreshTable?: boolean }, Overview];
  operators: [Record<string, never>, OperatorChoice[]];
  /** `trustedRoot`: a root certificate (PEM) the shopper adds for an operator outside the built-in roots. */
  register: [{ operatorUrl: string; trustedRoot?: string }, Overview];
  topUp: [{ amount: string }, Overview];
  sessions: [Record<string, never>, SessionItem[]];
  /** Ends a session: its summary (spent, returned, receipts) is what its withdrawal record books. */
  endSession: [{ transactionId: string }, TransactionView & { summary: SessionSummary }];
  sessionSummary: [{ transactionId: string }, SessionSummary];
  settings: [Record<string, never>, WalletSettingsView];
  /** `deposit`: "50", "50,00" or "SEK:50.00" within the limits; `idleCloseMinutes`: 0 (never) to a day. */
  setSettings: [{ deposit?: string; idleCloseMinutes?: number }, WalletSettingsView];
  history: [Record<string, never>, History];
  content: [{ transactionId: string; n: number }, { content: string; contentType: string } | null];
  sites: [Record<string, never>, SiteItem[]];
  /** `period`: 'day' | 'week' | 'month' (the budget renews), or 'none' (a budget for all time). */
  setSite: [{ origin: string; budget?: string; autoPayLimit?: string; blocked?: boolean; resetSpent?: boolean; period?: string }, SiteItem[]];
  removeSite: [{ origin: string }, SiteItem[]];
  /** Sites whose declined window still stops them asking (until `until`, or "allow again"). */
  declinedSites: [Record<string, never>, DeclinedSite[]];
  allowAgain: [{ origin: string }, DeclinedSite[]];
  evidence: [{ transactionId: string; n?: number }, unknown];
  prompt: [{ id: string }, PromptRecord | null];
  decide: [{ id: string; accept: boolean; budget?: string; autoPayLimit?: string }, { ok: true }];
  windowClosed: [{ windowId: number }, { ok: true }];
  // The wallet's owner at a terminal (CLI) and the tests.
  /** A purchase the owner asked for herself: no page, no site budget; the same purchase record as a page's. */
  purchase: [{ merchantUrl: string; productId: string; price: string }, PayResult];
  /** Purchases waiting for the shopper's answer in a prompt (the platform shows them; `decide` answers). */
  needsShopper: [Record<string, never>, PromptRecord[]];
  /** Ends every open session (the deposits' rest goes back). */
  endAllSessions: [Record<string, never>, TransactionView[]];
  /** The operator's view of a session; a cleared one is stored as cleared. */
  settlement: [{ transactionId: string }, TransactionView];
  /** The platform's periodic alarm: open sessions idle past the shopper's setting end. */
  tick: [Record<string, never>, { ended: number }];
}

export type WalletOperation = keyof WalletOperations;
export type OperationPayload<O extends WalletOperation> = WalletOperations[O][0];
export type OperationResult<O extends WalletOperation> = WalletOperations[O][1];

/** What each operation does, given its payload: the core (wallet.ts) fills it in. */
export type OperationHandlers = { [O in WalletOperation]: (payload: OperationPayload<O>) => Promise<OperationResult<O>> };

/** Operations a web page may reach (through the bridge). */
export const PAGE_OPERATIONS: ReadonlySet<WalletOperation> = new Set<WalletOperation>(['getInfo', 'quote', 'pay', 'purchased', 'open']);

/** Operations the wallet's own pages may reach (the extension's private API). */
export const SHOPPER_OPERATION_NAMES = [
  'overview',
  'operators',
  'register',
  'topUp',
  'sessions',
  'endSession',
  'sessionSummary',
  'settings',
  'setSettings',
  'history',
  'content',
  'sites',
  'setSite',
  'removeSite',
  'declinedSites',
  'allowAgain',
  'evidence',
  'prompt',
  'decide',
] as const satisfies readonly WalletOperation[];
export type ShopperOperation = (typeof SHOPPER_OPERATION_NAMES)[number];
export const SHOPPER_OPERATIONS: ReadonlySet<WalletOperation> = new Set<WalletOperation>(SHOPPER_OPERATION_NAMES);

/** The payload as an object (the messaging layer may hand over anything). */
function payloadObject(payload: unknown): Record<string, unknown> {
  if (payload === undefined || payload === null) return {};
  if (typeof payload !== 'object' || Array.isArray(payload)) throw new ObolError('MALFORMED', 'the payload must be an object');
  return payload as Record<string, unknown>;
}

/** Strings the operation needs: MALFORMED when one is missing (never an exception from deep inside). */
const REQUIRED_STRINGS: Partial<Record<WalletOperation, readonly string[]>> = {
  register: ['operatorUrl'],
  topUp: ['amount'],
  endSession: ['transactionId'],
  sessionSummary: ['transactionId'],
  content: ['transactionId'],
  setSite: ['origin'],
  removeSite: ['origin'],
  allowAgain: ['origin'],
  evidence: ['transactionId'],
  prompt: ['id'],
  decide: ['id'],
  purchase: ['merchantUrl', 'productId', 'price'],
  settlement: ['transactionId'],
  pay: ['key'],
};

/**
 * The one entry: runs `operation` with `payload` on `handlers`. Unknown operations are
 * UNSUPPORTED_METHOD; payloads missing a required field are MALFORMED.
 */
export async function dispatchOperation<O extends WalletOperation>(handlers: OperationHandlers, operation: O, payload: unknown): Promise<OperationResult<O>> {
  if (typeof operation !== 'string' || !Object.hasOwn(handlers, operation)) throw new ObolError('UNSUPPORTED_METHOD', `no operation ${String(operation)}`);
  const p = payloadObject(payload);
  for (const k of REQUIRED_STRINGS[operation] ?? []) {
    if (typeof p[k] !== 'string') throw new ObolError('MALFORMED', `${k} is missing`);
  }
  const handler = handlers[operation] as (payload: unknown) => Promise<OperationResult<O>>;
  return handler(p);
}
