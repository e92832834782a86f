import type { BridgeResults } from '@obol/protocol/bridgeWire';
import type { WalletBridge } from './bridgeClient.ts';
import { displayMoney, isWireMoney } from './money.ts';

type TableStatus = BridgeResults['obol_quote']['tableStatus'];
export interface QuoteAnswer {
  tableStatus: TableStatus;
  converted?: string | undefined;
}

/** What a button shows next to its own price. */
export type Conversion = { kind: 'none' } | { kind: 'converted'; text: string } | { kind: 'stale' };

/**
 * 'valid' and 'refreshed' tables give a number; 'expired' and 'unavailable' mean the wallet could
 * not get a fresh table, so the widget says the conversion is out of date instead of showing a
 * stale number; 'missing' (no table at all, e.g. no account yet) shows nothing, and so does
 * 'withheld' (the shopper has not approved this site: the wallet tells it no currency and no
 * rates, so the button shows the merchant's price, and the wallet's window the converted one). A
 * converted price in the price's own currency adds nothing and is not shown either.
 */
export function conversionFor(price: string, q: QuoteAnswer | null): Conversion {
  const status = q?.tableStatus;
  const converted = q?.converted;
  if (status === 'expired' || status === 'unavailable') return { kind: 'stale' };
  // Both are wire amounts here, so their first three letters are their currencies.
  return (status === 'valid' || status === 'refreshed') && isWireMoney(converted) && converted.slice(0, 3) !== price.slice(0, 3)
    ? { kind: 'converted', text: displayMoney(converted) }
    : { kind: 'none' };
}

type Waiting = Array<[price: string, resolve: (q: QuoteAnswer | null) => void]>;

/**
 * All the prices on a page go to the wallet in one `obol_quote` call (batched over a microtask,
 * as the elements connect together), each price once.
 */
export class QuoteBook {
  readonly #cache = new Map<string, Promise<QuoteAnswer | null>>();
  #queue: Waiting = [];
  readonly #listeners = new Set<() => void>();

  constructor(readonly bridge: Pick<WalletBridge, 'request'>) {}

  /** Called back when the quotes may have changed (`refresh`): elements ask again. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * After a purchase the shopper may have approved this site, and the wallet may now tell it the
   * conversions it withheld: forget the answers and let the elements ask again.
   */
  refresh(): void {
    this.#cache.clear();
    for (const listener of [...this.#listeners]) listener();
  }

  get(price: string): Promise<QuoteAnswer | null> {
    let p = this.#cache.get(price);
    if (!p) {
      if (!this.#queue.length) queueMicrotask(() => this.#flush());
      p = new Promise((resolve) => this.#queue.push([price, resolve]));
      this.#cache.set(price, p);
    }
    return p;
  }

  #flush(): void {
    const batch = this.#queue;
    this.#queue = [];
    // At most the bridge's maxItems (100) prices per call.
    for (let i = 0; i < batch.length; i += 100) void this.#ask(batch.slice(i, i + 100));
  }

  async #ask(part: Waiting): Promise<void> {
    let answer: BridgeResults['obol_quote'] | null = null;
    try {
      answer = await this.bridge.request('obol_quote', { prices: part.map((x) => x[0]) });
    } catch {
      // No conversion is shown; a later element asking for the same price tries again.
    }
    for (const [price, resolve] of part) {
      const tableStatus = answer?.tableStatus;
      // A withheld answer (or none) is not kept: after an approval the same price is asked again.
      if (!tableStatus || tableStatus === 'withheld') this.#cache.delete(price);
      // Matched by the price itself, so a wallet that answers in another order cannot swap them.
      resolve(tableStatus ? { tableStatus, converted: answer?.quotes.find((a) => a.price === price)?.converted } : null);
    }
  }
}
