import type { BridgeResults, WalletInfo } from '@obol/protocol/bridgeWire';
import { ObolError } from '@obol/protocol/errors';
import type { WidgetContext } from './context.ts';
import { canonicalWirePrice } from './money.ts';
import { noWallet, type PayInput, pay, payParams } from './payments.ts';

/** `obol_pay`'s result (content as base64url) plus `text` for text content and how many paywalls it unlocked. */
export type ObolPayment = BridgeResults['obol_pay'] & { text?: string; unlocked: number };

/**
 * `window.Obol`: the merchant page's own promise API (the wallet's API is the bridge, not this).
 * Failures reject with an ObolError: `{ code, name, message }` from protocol's catalogue.
 */
export interface ObolApi {
  /** The wallet, or null when none announced itself within ~600 ms. */
  ready(): Promise<WalletInfo | null>;
  /** Prices as wire strings ("EUR:0.03"), converted into the shopper's currency by the wallet. */
  quote(prices: readonly string[]): Promise<BridgeResults['obol_quote']>;
  /** Buy one product; matching `<obol-paywall product>` elements reveal the content. */
  pay(input: PayInput): Promise<ObolPayment>;
}

export function createApi(ctx: WidgetContext): ObolApi {
  const { bridge } = ctx;
  return Object.freeze({
    ready: () => bridge.ready(),
    async quote(prices: readonly string[]) {
      if (!Array.isArray(prices) || prices.length < 1 || prices.length > 100) {
        throw new ObolError('MALFORMED', 'quote() takes a list of 1 to 100 prices like "EUR:0.03"');
      }
      const wire = prices.map(canonicalWirePrice);
      if (!(await bridge.ready())) throw noWallet();
      return bridge.request('obol_quote', { prices: wire });
    },
    async pay(input: PayInput) {
      if (!input || typeof input !== 'object') throw new ObolError('MALFORMED', 'pay() takes { product, price, currency }');
      const paid = await pay(ctx, payParams(input, ctx.merchant, ctx.doc.baseURI), null);
      return { ...paid.result, ...paid.detail, unlocked: paid.unlocked };
    },
  });
}
