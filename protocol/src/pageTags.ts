import { ObolError } from './errors.ts';

/**
 * What a merchant's page says in its tags, read the same way by the widget (in the page) and by
 * `obol merchant doctor` (checking a page before it goes live): where the merchant module is, and
 * the ids of the products it sells.
 */

/**
 * The merchant module a widget script was served by: the folder of its URL (the module serves
 * `<module>/obol-widget.js`). Undefined when the script has no URL (inline).
 */
export function moduleOfScript(src: string | null | undefined): string | null {
  return src ? new URL('.', src).href.slice(0, -1) : null;
}

/**
 * `data-merchant` on the script tag (or `merchant` on one element) says where the shop mounted
 * the Obol merchant module, relative or absolute. The wallet wants an absolute http(s) URL.
 */
export function resolveMerchant(own: string | null | undefined, fromScript: string | null | undefined, base: string): string {
  const raw = own?.trim() || fromScript?.trim() || '';
  if (!raw) throw new ObolError('MALFORMED', 'no merchant: set data-merchant on the widget script or merchant on the element');
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new ObolError('MALFORMED', `the merchant is not a URL: ${JSON.stringify(raw.slice(0, 80))}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ObolError('MALFORMED', 'the merchant must be an http(s) URL');
  }
  if (url.username || url.password) throw new ObolError('MALFORMED', 'the merchant URL must not carry credentials');
  url.hash = '';
  if (url.href.length > 500) throw new ObolError('MALFORMED', 'the merchant URL is too long');
  return url.href;
}

/** The bridge's product id shape (protocol's `ProductIdT`), checked before anything is sent. */
export const PRODUCT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkProductId(product: string | null | undefined): string {
  const p = (product ?? '').trim();
  if (!PRODUCT_ID.test(p)) throw new ObolError('MALFORMED', `product must be an id like "why-micropayments", got ${JSON.stringify(p.slice(0, 40))}`);
  return p;
}
