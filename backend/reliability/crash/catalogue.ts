import type { Product } from '../../src/merchant/catalogue.ts';

/** How many products each crash-trial shop sells: a shopper buys each at most once per shop. */
export const CRASH_PRODUCTS = 40;

/**
 * The crash trial's wares: many small products, so that every purchase a shopper makes at a shop
 * is of a product it never bought there before. A second charged receipt for one product is then
 * a purchase charged twice, not a second purchase.
 */
export function crashCatalogue(currency: string): Product[] {
  return Array.from({ length: CRASH_PRODUCTS }, (_, i) => {
    const productId = crashProductId(i);
    return {
      productId,
      title: `Note ${i + 1}`,
      description: `Crash-trial note ${i + 1}`,
      price: priceOf(currency, i),
      contentType: 'text/plain; charset=utf-8',
      content: new TextEncoder().encode(`note ${i + 1} of the crash trial\n`),
    };
  });
}

export function crashProductId(i: number): string {
  return `note-${String(i + 1).padStart(2, '0')}`;
}

/** Three prices per shop, a few cents' worth: EUR 0.03–0.05, or SEK 0.30–0.40 (about the same). */
function priceOf(currency: string, i: number): string {
  return currency === 'SEK' ? `SEK:0.${30 + (i % 3) * 5}` : `${currency}:0.0${3 + (i % 3)}`;
}
