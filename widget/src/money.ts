import { ObolError } from '@obol/protocol/errors';
import { formatAmount, parseAmount } from '@obol/protocol/money';

/**
 * Prices on the page are two attributes (`price="0.03" currency="EUR"`); on the bridge they are
 * one wire string (`"EUR:0.03"`). The digits go string → bigint → string through protocol/'s
 * money module, so nothing is rounded through a float, and a price with more decimals than its
 * currency has is refused rather than rounded.
 */

/** The bridge's `PositiveMoney` shape (protocol/src/messages.ts), which the wallet checks again. */
const POSITIVE_MONEY = /^[A-Z]{3}:[0-9]{1,18}(\.[0-9]{1,4})?$/;
/** What a shop may write in `price`: plain digits with an optional '.' fraction, nothing else. */
const PRICE_ATTR = /^[0-9]{1,18}(\.[0-9]{1,4})?$/;

/** `wirePrice("0.03", "EUR")` → `"EUR:0.03"`. Throws ObolError (MALFORMED, UNKNOWN_CURRENCY, INVALID_AMOUNT). */
export function wirePrice(price: string | null | undefined, currency: string | null | undefined): string {
  const cur = (currency ?? '').trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(cur)) {
    throw new ObolError('UNKNOWN_CURRENCY', `currency must be a three-letter ISO 4217 code like "EUR", got ${show(currency)}`);
  }
  const digits = (price ?? '').trim();
  if (!PRICE_ATTR.test(digits)) {
    throw new ObolError('MALFORMED', `price must be a number like "0.03", got ${show(price)}`);
  }
  // The wire grammar has no leading zeros ("007.5" is "7.5"); parseAmount then checks the currency
  // and its decimal places exactly as for any wire amount (one parser in the bundle, not two).
  return positive(formatAmount(parseAmount(`${cur}:${digits.replace(/^0+(?=[0-9])/, '')}`)));
}

/** Check a wire price a page passes to `Obol.quote` and return its canonical form ("EUR:0.3" → "EUR:0.30"). */
export function canonicalWirePrice(wire: unknown): string {
  if (typeof wire !== 'string') throw new ObolError('MALFORMED', 'a price must be a string like "EUR:0.03"');
  return positive(formatAmount(parseAmount(wire.trim())));
}

function positive(wire: string): string {
  if (/^[A-Z]{3}:0*(\.0*)?$/.test(wire)) throw new ObolError('INVALID_AMOUNT', 'a price must be more than zero');
  if (!POSITIVE_MONEY.test(wire)) throw new ObolError('INVALID_AMOUNT', `not a price the wallet accepts: ${show(wire)}`);
  return wire;
}

/** For people: `"EUR:0.03"` → `"0.03 EUR"`. Anything that is not a wire amount is returned as is. */
export function displayMoney(wire: string): string {
  const m = /^([A-Z]{3}):(-?[0-9]+(?:\.[0-9]+)?)$/.exec(wire);
  return m ? `${m[2]} ${m[1]}` : wire;
}

/** The currency of a wire amount, or '' when it is not one. */
export function currencyOf(wire: string): string {
  return /^([A-Z]{3}):/.exec(wire)?.[1] ?? '';
}

/** Is this a positive wire amount the widget may show? */
export function isWireMoney(x: unknown): x is string {
  return typeof x === 'string' && POSITIVE_MONEY.test(x);
}

function show(x: unknown): string {
  const s = String(x ?? '');
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}
