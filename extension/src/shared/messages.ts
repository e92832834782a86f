import type { BridgeRequest } from '@obol/protocol/bridgeWire';
import type { DeclinedSite } from '@obol/protocol/customerAgent/consent';
import type {
  History,
  HistoryItem,
  OperatorChoice,
  Overview,
  SessionItem,
  ShopLink,
  ShopperOperation,
  SiteItem,
  TableState,
  WalletOperations,
} from '@obol/protocol/customerAgent/walletApi';
import type { ObolErrorJson } from '@obol/protocol/errors';

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

export type Reply<T> = { result: T } | { error: ObolErrorJson };

export type { DeclinedSite, History, HistoryItem, OperatorChoice, Overview, SessionItem, ShopLink, SiteItem, TableState };

/**
 * The private API: the wallet core's shopper operations (protocol/src/customerAgent/walletApi.ts),
 * method → [params, result]. Only the extension's own pages may call it.
 */
export type WalletMethod = ShopperOperation;
export type WalletApi = Pick<WalletOperations, WalletMethod>;
export type WalletParams<M extends WalletMethod> = WalletApi[M][0];
export type WalletResult<M extends WalletMethod> = WalletApi[M][1];

export interface WalletMessage<M extends WalletMethod = WalletMethod> {
  type: typeof WALLET_MESSAGE;
  method: M;
  params: WalletParams<M>;
}

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
