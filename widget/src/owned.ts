import type { WalletBridge } from './bridgeClient.ts';

/**
 * Which products on the page the shopper already bought here (issue 14), so their buttons offer
 * to open them, not to buy them again. The wallet answers for this page's own origin only, and
 * tells a site the shopper has not approved nothing. One `obol_purchased` per merchant for the
 * buttons that connect together (batched over a microtask, at most the bridge's 100 ids).
 */
export class OwnedBook {
  readonly #asks = new Map<string, [ids: string[], answer: Promise<string[]>]>();

  constructor(readonly bridge: Pick<WalletBridge, 'request'>) {}

  has(merchant: string, productId: string): Promise<boolean> {
    let ask = this.#asks.get(merchant);
    if (!ask || ask[0].length > 99) {
      const ids: string[] = [];
      ask = [
        ids,
        Promise.resolve().then(() => {
          this.#asks.delete(merchant); // a button that connects later asks anew
          // No answer: the button offers to buy (and the wallet still never charges twice for one click).
          return this.bridge.request('obol_purchased', { merchant, productIds: ids }).then((r) => r.productIds, () => []);
        }),
      ];
      this.#asks.set(merchant, ask);
    }
    ask[0].push(productId);
    return ask[1].then((ids) => ids.includes(productId));
  }
}
