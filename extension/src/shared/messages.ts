import type { BridgeRequest } from '@obol/protocol/bridgeWire';
import type { AccountView, Balance, TransactionView } from '@obol/protocol/customerAgent';
import type { ObolErrorJson } from '@obol/protocol/errors';
import type { ReceiptRecord } from '@obol/protocol/walletStore';
import type { DeclinedSite } from '../background/consent.ts';
import type { ActivityRecord, PromptRecord, SiteRecord } from '../background/db.ts';

/**
 * What crosses `runtime.sendMessage` inside the extension. Two kinds of request, answered by two
 * separate routers in the service worker:
 *
 * - `obol/bridge`: a page's public call, relayed by the content script (the page origin is taken
 *   from the browser's sender, never from here);
 * - `obol/wallet`: everything else, answered only to the extension's own pages.
 *
 * Answers are `{ result }` or `{ error }` (an error from the catalogue), never a thrown error:
 * errors lose their code on the way through the messaging layer.
 */
export const BRIDGE_MESSAGE = 'obol/bridge';
export const WALLET_MESSAGE = 'obol/wallet';
/** Broadcast by the service worker when its state changed: the UI refetches. */
export const CHANGED_MESSAGE = 'obol/changed';

export interface BridgeMessage {
  type: typeof BRIDGE_MESSAGE;
  /** Chosen by the content script per page request, and reused when it resends that request. */
  key: string;
  request: BridgeRequest;
  /**
   * Set by the content script, never by the page: the request arrived while the frame had a real
   * user gesture not yet spent on another purchase (transient activation, one purchase each).
   */
  gesture: boolean;
}

export type { DeclinedSite };

export type Reply<T> = { result: T } | { error: ObolErrorJson };

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
}

export interface SessionItem extends TransactionView {
  /** Deposit left in the customer's currency (at the pinned rate), when known. */
  remainingCustomer?: string;
}

export interface HistoryItem {
  receipt: ReceiptRecord;
  merchantName: string;
  /** Base64url of the content, when the wallet kept it. */
  hasContent: boolean;
}

export interface History {
  receipts: HistoryItem[];
  transactions: TransactionView[];
  activity: ActivityRecord[];
  evidence: boolean;
}

export interface SiteItem extends SiteRecord {
  reserved: string;
}

export interface OperatorChoice {
  url: string;
  name: string;
  /** Shops that take this operator's customers, offered on onboarding's ready screen (the demo's). */
  shops?: ShopLink[];
}

export interface ShopLink {
  name: string;
  url: string;
}

/** The private API: method → [params, result]. Only the extension's own pages may call it. */
export interface WalletApi {
  overview: [{ refreshTable?: boolean }, Overview];
  operators: [Record<string, never>, OperatorChoice[]];
  /** `trustedRoot`: a root certificate (PEM) the shopper adds for an operator outside the built-in roots. */
  register: [{ operatorUrl: string; trustedRoot?: string }, Overview];
  topUp: [{ amount: string }, Overview];
  sessions: [Record<string, never>, SessionItem[]];
  endSession: [{ transactionId: string }, TransactionView];
  history: [Record<string, never>, History];
  content: [{ transactionId: string; n: number }, { content: string; contentType: string } | null];
  sites: [Record<string, never>, SiteItem[]];
  setSite: [{ origin: string; budget?: string; autoPayLimit?: string; blocked?: boolean; resetSpent?: boolean }, SiteItem[]];
  removeSite: [{ origin: string }, SiteItem[]];
  /** Sites whose declined window still stops them asking (until `until`, or "allow again"). */
  declinedSites: [Record<string, never>, DeclinedSite[]];
  allowAgain: [{ origin: string }, DeclinedSite[]];
  evidence: [{ transactionId: string; n?: number }, unknown];
  prompt: [{ id: string }, PromptRecord | null];
  decide: [{ id: string; accept: boolean; budget?: string; autoPayLimit?: string }, { ok: true }];
}
export type WalletMethod = keyof WalletApi;
export type WalletParams<M extends WalletMethod> = WalletApi[M][0];
export type WalletResult<M extends WalletMethod> = WalletApi[M][1];

export interface WalletMessage<M extends WalletMethod = WalletMethod> {
  type: typeof WALLET_MESSAGE;
  method: M;
  params: WalletParams<M>;
}

export const WALLET_METHODS: ReadonlySet<string> = new Set<WalletMethod>([
  'overview',
  'operators',
  'register',
  'topUp',
  'sessions',
  'endSession',
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
]);

/**
 * The demo world's shops (backend/src/demo/main.ts, DEMO_PORTS): a customer of either demo bank
 * can buy at both, in her own currency.
 */
export const DEMO_SHOPS: ShopLink[] = [
  { name: 'The Daily Obol (articles)', url: 'http://127.0.0.1:7201' },
  { name: 'Obol Downloads (files)', url: 'http://127.0.0.1:7202' },
];

/** The demo operators offered at onboarding (besides a field for any URL). */
export const DEMO_OPERATORS: OperatorChoice[] = [
  { url: 'http://127.0.0.1:7101', name: 'Svea Bank (SEK)', shops: DEMO_SHOPS },
  { url: 'http://127.0.0.1:7102', name: 'Banque Euro (EUR)', shops: DEMO_SHOPS },
];

/** The shops listed for the operator at `operatorUrl` (none when it is not a listed one). */
export function shopsOf(operators: readonly OperatorChoice[], operatorUrl: string | undefined): ShopLink[] {
  if (!operatorUrl) return [];
  const same = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
  return operators.find((o) => same(o.url, operatorUrl))?.shops ?? [];
}
