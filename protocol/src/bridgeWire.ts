import type { ObolErrorJson } from './errors.ts';

/**
 * The page bridge on the wire: how a merchant page (the widget) and the wallet extension's
 * content script talk. No schema library here: this file is all the content script (loaded on
 * every page) and the widget need, so it stays a few hundred bytes. The full check of a
 * request's params against its schema is `isBridgeRequest` in bridge.ts, run by the service
 * worker.
 *
 * Discovery, in the style of EIP-6963 (no global two wallets would fight over):
 *   page   → window: CustomEvent `obol:requestWallet`
 *   wallet → window: CustomEvent `obol:announceWallet`, detail `{ info: WalletInfo }`
 *   (the wallet also announces once when its content script loads)
 *
 * Requests and answers travel by `window.postMessage` between the page and the wallet's content
 * script, tagged with a direction and a protocol version; the content script relays to the
 * service worker, which takes the page's origin from the browser (`sender.origin`), never from
 * the message.
 */
export const BRIDGE_VERSION = 1;
export const ANNOUNCE_EVENT = 'obol:announceWallet';
export const REQUEST_EVENT = 'obol:requestWallet';
export const PAGE_TO_WALLET = 'obol:page-to-wallet';
export const WALLET_TO_PAGE = 'obol:wallet-to-page';

/** The public methods a page may call; everything else answers only to the extension's own pages. */
export const PUBLIC_METHODS = ['obol_getInfo', 'obol_quote', 'obol_pay', 'obol_purchased', 'obol_open'] as const;
export type BridgeMethod = (typeof PUBLIC_METHODS)[number];

export interface WalletInfo {
  uuid: string;
  name: string;
  /** A data: URI of the wallet's icon. */
  icon: string;
  /** Reverse-DNS id of the wallet, e.g. "org.obol.wallet". */
  rdns: string;
}

export interface BridgeParamsMap {
  obol_getInfo: Record<string, never>;
  obol_quote: { prices: string[] };
  /** Buy one product. `merchant` is the URL where the shop mounted the merchant module (absolute). */
  obol_pay: { merchant: string; productId: string; price: string; description?: string };
  /** Which of these products the shopper bought from this merchant on this very site (issue 14). */
  obol_purchased: { merchant: string; productIds: string[] };
  /** Open again, without a charge, a product the shopper bought from this merchant on this site. */
  obol_open: { merchant: string; productId: string };
}
export type BridgeParams<M extends BridgeMethod> = BridgeParamsMap[M];

export interface BridgeResults {
  /** `currency` and `operatorId` only to a site the shopper approved. */
  obol_getInfo: { wallet: WalletInfo; hasAccount: boolean; currency?: string; operatorId?: string };
  obol_quote: {
    /** 'withheld': the shopper has not approved this site yet, so no rates are told (no `converted`). */
    tableStatus: 'valid' | 'refreshed' | 'unavailable' | 'missing' | 'expired' | 'withheld';
    quotes: Array<{ price: string; converted?: string }>;
  };
  obol_pay: {
    /**
     * The transaction as the merchant knows it: its trade handle, never the wallet's
     * TransactionIdentity (which names the shopper's logon at her bank, and would let the
     * merchant's pages link her deposits).
     */
    transactionId: string;
    n: number;
    productId: string;
    price: string;
    /** Base64url of the delivered content. */
    content: string;
    contentType: string;
    contentHash: string;
    /** The acceptId of the signed accept: the receipt's id in the wallet. */
    receiptId: string;
  };
  /**
   * Those of the asked products bought here: at this page's origin (never another site's), from
   * this merchant, delivered. An empty list to a site the shopper has not approved (it learns nothing).
   */
  obol_purchased: { productIds: string[] };
  /** The purchase as `obol_pay` answered it, delivered again by the merchant; nothing was charged. */
  obol_open: BridgeResults['obol_pay'];
}

export interface BridgeRequest<M extends BridgeMethod = BridgeMethod> {
  channel: typeof PAGE_TO_WALLET;
  version: typeof BRIDGE_VERSION;
  id: string;
  method: M;
  params: BridgeParams<M>;
}

export type BridgeResponse<M extends BridgeMethod = BridgeMethod> =
  | { channel: typeof WALLET_TO_PAGE; version: typeof BRIDGE_VERSION; id: string; result: BridgeResults[M] }
  | { channel: typeof WALLET_TO_PAGE; version: typeof BRIDGE_VERSION; id: string; error: ObolErrorJson };

const ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The content script's trust rule, in one place (MetaMask style): a message is relayed only if it
 * comes from this very window, carries the page-to-wallet channel and our version, has an id,
 * names a public method and has an object of params. (The service worker then checks the params
 * against the method's schema: `isBridgeRequest`.)
 */
export function isBridgeEnvelope(data: unknown, source: unknown, self: unknown): data is BridgeRequest {
  if (source !== self || !data || typeof data !== 'object') return false;
  const m = data as Record<string, unknown>;
  return (
    m.channel === PAGE_TO_WALLET &&
    m.version === BRIDGE_VERSION &&
    typeof m.id === 'string' &&
    ID.test(m.id) &&
    typeof m.method === 'string' &&
    (PUBLIC_METHODS as readonly string[]).includes(m.method) &&
    typeof m.params === 'object' &&
    m.params !== null &&
    !Array.isArray(m.params)
  );
}

/** The page side's filter for answers: from this window, the wallet-to-page channel, an id it asked. */
export function isBridgeResponse(data: unknown, source: unknown, self: unknown): data is BridgeResponse {
  if (source !== self || !data || typeof data !== 'object') return false;
  const m = data as Record<string, unknown>;
  return m.channel === WALLET_TO_PAGE && m.version === BRIDGE_VERSION && typeof m.id === 'string' && ('result' in m || 'error' in m);
}
