import type { BridgeResults } from '@obol/protocol/bridgeWire';
import type { WalletBridge } from './bridgeClient.ts';
import { currencyOf, displayMoney, isWireMoney } from './money.ts';

type TableStatus = BridgeResults['obol_quote']['tableStatus'];
export interface QuoteAnswer {
  tableStatus: TableStatus;
  converted?: string;
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
  if (!q) return { kind: 'none' };
  if (q.tableStatus === 'expired' || q.tableStatus === 'unavailable') return { kind: 'stale' };
  if (q.tableStatus !== 'valid' && q.tableStatus !== 'refreshed') return { kind: 'none' };
  if (!isWireMoney(q.converted) || currencyOf(q.converted) === currencyOf(price)) return { kind: 'none' };
  return { kind: 'converted', text: displayMoney(q.converted) };
}

const MAX_PER_CALL = 100; // the bridge's maxItems for obol_quote

/**
 * All the prices on a page go to the wallet in one `obol_quote` call (batched over a microtask,
 * as the elements connect together), each price once.
 */
export class QuoteBook {
  readonly #cache = new Map<string, Promise<QuoteAnswer | null>>();
  #queue: Array<{ price: string; resolve(q: QuoteAnswer | null): void }> = [];
  #scheduled = false;
  readonly #listeners = new Set<() => void>();

  readonly #bridge: Pick<WalletBridge, 'request'>;

  constructor(bridge: Pick<WalletBridge, 'request'>) {
    this.#bridge = bridge;
  }

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
      p = new Promise((resolve) => this.#queue.push({ price, resolve }));
      this.#cache.set(price, p);
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#flush());
      }
    }
    return p;
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    for (let i = 0; i < batch.length; i += MAX_PER_CALL) void this.#ask(batch.slice(i, i + MAX_PER_CALL));
  }

  async #ask(part: Array<{ price: string; resolve(q: QuoteAnswer | null): void }>): Promise<void> {
    try {
      const answer = await this.#bridge.request('obol_quote', { prices: part.map((x) => x.price) });
      for (const { price, resolve } of part) {
        // Matched by the price itself, so a wallet that answers in another order cannot swap them.
        const q = answer.quotes.find((a) => a.price === price);
        // A withheld answer is not kept: after an approval the same price is asked again.
        if (answer.tableStatus === 'withheld') this.#cache.delete(price);
        resolve({ tableStatus: answer.tableStatus, converted: q?.converted });
      }
    } catch {
      // No conversion is shown; a later element asking for the same price tries again.
      for (const { price, resolve } of part) {
        this.#cache.delete(price);
        resolve(null);
      }
    }
  }
}
