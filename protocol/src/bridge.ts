import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import type { ObolErrorJson } from './errors.ts';
import { type HashT, PositiveMoney, ProductIdT } from './messages.ts';

/**
 * The page bridge: how a merchant page (the widget) and the wallet extension talk. Pure types and
 * checks, shared by `widget/` and `extension/` so both sides read one definition.
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

export interface WalletInfo {
  uuid: string;
  name: string;
  /** A data: URI of the wallet's icon. */
  icon: string;
  /** Reverse-DNS id of the wallet, e.g. "org.obol.wallet". */
  rdns: string;
}

/** The public methods a page may call; everything else answers only to the extension's own pages. */
export const BridgeMethods = {
  /** Is there an account, and in which currency does the shopper think? */
  obol_getInfo: Type.Object({}, { additionalProperties: false }),
  /** Prices in the shopper's currency, from the wallet's cached exchange table. */
  obol_quote: Type.Object({ prices: Type.Array(PositiveMoney, { minItems: 1, maxItems: 100 }) }, { additionalProperties: false }),
  /** Buy one product. `merchant` is the URL where the shop mounted the merchant module (absolute). */
  obol_pay: Type.Object(
    {
      merchant: Type.String({ pattern: '^https?://', maxLength: 500 }),
      productId: ProductIdT,
      price: PositiveMoney,
      description: Type.Optional(Type.String({ maxLength: 300 })),
    },
    { additionalProperties: false },
  ),
} as const;
export type BridgeMethod = keyof typeof BridgeMethods;
export type BridgeParams<M extends BridgeMethod> = Static<(typeof BridgeMethods)[M]>;

export interface BridgeResults {
  obol_getInfo: { wallet: WalletInfo; hasAccount: boolean; currency?: string; operatorId?: string };
  obol_quote: {
    tableStatus: 'valid' | 'refreshed' | 'unavailable' | 'missing' | 'expired';
    quotes: Array<{ price: string; converted?: string }>;
  };
  obol_pay: {
    transactionId: string;
    n: number;
    productId: string;
    price: string;
    /** Base64url of the delivered content. */
    content: string;
    contentType: string;
    contentHash: Static<typeof HashT>;
    /** The acceptId of the signed accept: the receipt's id in the wallet. */
    receiptId: string;
  };
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
 * The trust rule of the content script, in one place (MetaMask style): a message counts only if
 * it comes from this very window, carries the page-to-wallet channel and our version, has an id,
 * names a public method, and its params match that method's schema.
 */
export function isBridgeRequest(data: unknown, source: unknown, self: unknown): data is BridgeRequest {
  if (source !== self || !data || typeof data !== 'object') return false;
  const m = data as Record<string, unknown>;
  return (
    m.channel === PAGE_TO_WALLET &&
    m.version === BRIDGE_VERSION &&
    typeof m.id === 'string' &&
    ID.test(m.id) &&
    typeof m.method === 'string' &&
    Object.hasOwn(BridgeMethods, m.method) &&
    Value.Check(BridgeMethods[m.method as BridgeMethod], m.params)
  );
}

/** The page side's filter for answers: from this window, the wallet-to-page channel, an id it asked. */
export function isBridgeResponse(data: unknown, source: unknown, self: unknown): data is BridgeResponse {
  if (source !== self || !data || typeof data !== 'object') return false;
  const m = data as Record<string, unknown>;
  return m.channel === WALLET_TO_PAGE && m.version === BRIDGE_VERSION && typeof m.id === 'string' && ('result' in m || 'error' in m);
}
