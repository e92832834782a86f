/**
 * Products a shop defines in its own code (a database, files, a CMS): the merchant agent prepares
 * every one of them when it opens — encrypted once with its own K2, signed once (FIG 4, see
 * products.ts) — and sells them from its database from then on. `memoryCatalogue` is the
 * in-memory list of the demo shops and the tests. Products can also be added one at a time with
 * `agent.addProduct` or `obol merchant add-product`.
 */
import type { ProductInput } from '@obol/protocol/delivery';
import { ObolError } from '@obol/protocol/errors';
import { checkSchema, ProductIdT } from '@obol/protocol/messages';
import { formatAmount, parseAmount } from '@obol/protocol/money';

/** A product as a shop lists it: the same shape a merchant adds (prepared once for FIG 4). */
export type Product = ProductInput;

/** A product as listed on the shop's pages: everything but the content. */
export type ProductSummary = Omit<Product, 'content'>;

export interface Catalogue {
  get(productId: string): Promise<Product | undefined>;
  list(): Promise<Product[]>;
}

/** Check a product the way the merchant agent relies on it: a valid id and a canonical price. */
export function checkProduct(p: Product): Product {
  checkSchema(ProductIdT, p.productId, 'productId');
  if (formatAmount(parseAmount(p.price)) !== p.price) {
    throw new ObolError('INVALID_AMOUNT', `price of ${p.productId} must be written canonically, e.g. "EUR:0.03" (got ${JSON.stringify(p.price)})`);
  }
  if (!(p.content instanceof Uint8Array)) throw new ObolError('MALFORMED', `content of ${p.productId} must be bytes`);
  return p;
}

export function summaryOf(p: Product): ProductSummary {
  return { productId: p.productId, title: p.title, description: p.description, price: p.price, contentType: p.contentType };
}

/** An in-memory catalogue; products are checked once, when it is made. */
export function memoryCatalogue(products: readonly Product[]): Catalogue {
  const byId = new Map<string, Product>();
  for (const p of products) {
    checkProduct(p);
    if (byId.has(p.productId)) throw new ObolError('CONFLICT', `product ${p.productId} is listed twice`);
    byId.set(p.productId, p);
  }
  return {
    get: async (productId) => byId.get(productId),
    list: async () => [...byId.values()],
  };
}
