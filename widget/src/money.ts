import { ObolError } from '@obol/protocol/errors';
import { formatAmount, isCurrency, parseAmount } from '@obol/protocol/money';

/**
 * Prices on the page are two attributes (`price="0.03" currency="EUR"`); on the bridge they are
 * one wire string (`"EUR:0.03"`). The digits go string → bigint → string through protocol/'s
 * money module, so nothing is rounded through a float, and a price with more decimals than its
 * currency has is refused rather than rounded.
 */

/** The bridge's `PositiveMoney` shape (protocol/src/messages.ts), which the wallet checks again. */
const POSITIVE_MONEY = /^[A-Z]{3}:[0-9]{1,18}(\.[0-9]{1,4})?$/;

const show = (x: unknown) => JSON.stringify(String(x ?? '').slice(0, 40));

/** `wirePrice("0.03", "EUR")` → `"EUR:0.03"`. Throws ObolError (MALFORMED, UNKNOWN_CURRENCY, INVALID_AMOUNT). */
export function wirePrice(price: string | null | undefined, currency: string | null | undefined): string {
  const cur = (currency ?? '').trim().toUpperCase();
  if (!isCurrency(cur)) throw new ObolError('UNKNOWN_CURRENCY', `currency must be a code Obol knows, like "EUR", got ${show(currency)}`);
  const digits = (price ?? '').trim();
  // What a shop may write in `price`: plain digits with an optional '.' fraction, nothing else.
  if (!/^[0-9]{1,18}(\.[0-9]{1,4})?$/.test(digits)) throw new ObolError('MALFORMED', `price must be a number like "0.03", got ${show(price)}`);
  // The wire grammar has no leading zeros ("007.5" is "7.5"); parseAmount then checks the currency
  // and its decimal places exactly as for any wire amount (one parser in the bundle, not two).
  return canonicalWirePrice(`${cur}:${digits.replace(/^0+(?=[0-9])/, '')}`);
}

/** Check a wire price a page passes to `Obol.quote` and return its canonical form ("EUR:0.3" → "EUR:0.30"). */
export function canonicalWirePrice(wire: unknown): string {
  if (typeof wire !== 'string') throw new ObolError('MALFORMED', 'a price must be a string like "EUR:0.03"');
  const canonical = formatAmount(parseAmount(wire.trim()));
  if (!isWireMoney(canonical) || !/[1-9]/.test(canonical.slice(4))) {
    throw new ObolError('INVALID_AMOUNT', `a price must be more than zero and one the wallet accepts, not ${show(canonical)}`);
  }
  return canonical;
}

/** For people: `"EUR:0.03"` → `"0.03 EUR"`. Anything that is not a wire amount is returned as is. */
export function displayMoney(wire: string): string {
  return wire.replace(/^([A-Z]{3}):(-?[0-9]+(\.[0-9]+)?)$/, '$2 $1');
}

/** Is this a positive wire amount the widget may show? */
export function isWireMoney(x: unknown): x is string {
  return typeof x === 'string' && POSITIVE_MONEY.test(x);
}
