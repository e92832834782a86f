import { ObolError } from './errors.ts';

/**
 * Money. In code an amount is `{ currency, value }` with `value` a bigint count of the currency's
 * minor units (ISO 4217 exponent); on the wire it is the string `"EUR:0.05"`. No floating point
 * touches money here: every step is string <-> bigint or bigint arithmetic.
 */

/** ISO 4217 minor-unit exponents of the currencies Obol knows. Unknown codes are refused, never guessed. */
export const CURRENCY_EXPONENTS = {
  EUR: 2,
  SEK: 2,
  USD: 2,
  GBP: 2,
  CHF: 2,
  NOK: 2,
  DKK: 2,
  PLN: 2,
  CZK: 2,
  HUF: 2,
  JPY: 0,
  KRW: 0,
  ISK: 0,
  BHD: 3,
  KWD: 3,
} as const satisfies Record<string, number>;

export type CurrencyCode = keyof typeof CURRENCY_EXPONENTS;

export interface Amount {
  currency: string;
  /** Minor units: EUR:0.05 is 5n, JPY:5 is 5n. */
  value: bigint;
}

/**
 * A schema-level pre-check for wire amounts (for typebox patterns). It cannot know each currency's
 * exponent, so `parseAmount` is still the real check.
 */
export const AMOUNT_PATTERN = '^[A-Z]{3}:-?(0|[1-9][0-9]*)(\\.[0-9]{1,3})?$';

/** Longest wire amount we read: bounds the work a hostile string can cause (|value| < 10^50 round-trips). */
export const MAX_AMOUNT_TEXT = 64;
/**
 * The largest count of minor units an amount read from text may have: what a ledger balance
 * (a signed 64-bit integer) can hold, so that no amount that parses can fail to be stored.
 */
export const MAX_MINOR_UNITS = 2n ** 63n - 1n;

// Own-property check so that 'toString' or '__proto__' are never taken for currencies.
export function isCurrency(code: unknown): code is CurrencyCode {
  return typeof code === 'string' && Object.hasOwn(CURRENCY_EXPONENTS, code);
}

export function exponentOf(code: string): number {
  if (!isCurrency(code)) throw new ObolError('UNKNOWN_CURRENCY', `unknown currency: ${quote(code)}`);
  return CURRENCY_EXPONENTS[code];
}

export function amount(currency: string, value: bigint): Amount {
  exponentOf(currency);
  if (typeof value !== 'bigint') throw new ObolError('INVALID_AMOUNT', 'an amount must be a whole number of minor units (bigint)');
  return { currency, value };
}

export function zero(currency: string): Amount {
  return amount(currency, 0n);
}

// Wire grammar: CUR ":" ["-"] int ["." 1*DIGIT], int without leading zeros. The number of fraction
// digits may be 0..exponent ("EUR:5" and "EUR:5.5" read as EUR:5.00 and EUR:5.50); more digits than
// the currency has is refused rather than rounded. formatAmount always writes exactly `exponent`.
// No '+', no spaces, no exponent, ASCII digits only: one spelling family, nothing to guess.
const WIRE = /^([A-Z]{3}):(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

/** Read a wire amount `"EUR:0.05"`. Throws MALFORMED, UNKNOWN_CURRENCY or INVALID_AMOUNT. */
export function parseAmount(text: string): Amount {
  if (typeof text !== 'string' || text.length > MAX_AMOUNT_TEXT) {
    throw new ObolError('MALFORMED', 'an amount must be a string like "EUR:0.05"');
  }
  const m = WIRE.exec(text);
  if (!m) throw new ObolError('MALFORMED', `not an amount (expected like "EUR:0.05"): ${quote(text)}`);
  const [, currency = '', sign, int = '', frac = ''] = m;
  const a = fromDigits(currency, sign === '-', int, frac, text);
  // "EUR:-0" is a second spelling of zero; a signed zero has no meaning in money, so refuse it.
  if (sign === '-' && a.value === 0n) throw new ObolError('MALFORMED', `negative zero is not an amount: ${quote(text)}`);
  return a;
}

export interface DecimalInputOptions {
  /**
   * The decimal mark the input uses, when the caller knows it (a machine-written attribute, or the
   * shopper's locale). Then the other character is refused rather than read as a grouping mark.
   * Without it both '.' and ',' are taken as the decimal mark, and a spelling that could also be a
   * thousands group ("1,000", "1.000") is refused as ambiguous.
   */
  decimalMark?: '.' | ',';
}

// What a person may type, after trimming the ends: ASCII digits and at most one decimal mark.
const UI = /^([0-9]*)(?:([.,])([0-9]*))?$/;

/**
 * Read what a person typed ("0.05", "0,05", " 12 ") as an amount of `currency`. The shopper-facing
 * parser: amounts are never negative, never rounded and never guessed. Refused, with a sentence
 * saying why (INVALID_AMOUNT, or MALFORMED for what is not a number at all): a sign, an exponent,
 * spaces or separators inside, more fraction digits than the currency has, more than a ledger holds (2^63 - 1 minor units), and
 * a single separator followed by exactly three digits ("1,000"), which in one locale groups thousands
 * and in another marks decimals, so it may mean an amount 1000 times too small.
 */
export function parseDecimal(currency: string, text: string, options: DecimalInputOptions = {}): Amount {
  const exp = exponentOf(currency);
  const t = typeof text === 'string' ? text.trim() : '';
  if (t.length > MAX_AMOUNT_TEXT) throw new ObolError('INVALID_AMOUNT', `too many digits: ${quote(text)}`);
  const m = UI.exec(t);
  if (!m) throw new ObolError(...refusal(t, text));
  const [, int = '', mark, frac = ''] = m;
  if (int === '' && frac === '') throw new ObolError('MALFORMED', `not a number: ${quote(text)}`);
  if (mark !== undefined && options.decimalMark !== undefined && mark !== options.decimalMark) {
    throw new ObolError(
      'INVALID_AMOUNT',
      `${quote(text)}: the decimal mark here is "${options.decimalMark}"; write the amount without thousands separators`,
    );
  }
  if (mark !== undefined && options.decimalMark === undefined && frac.length === 3 && /^[1-9][0-9]{0,2}$/.test(int)) {
    const whole = `${int}${frac}`;
    throw new ObolError(
      'INVALID_AMOUNT',
      `${quote(text)} is ambiguous: "${mark}" may separate thousands (${whole}) or decimals (${int}.${frac}); ` +
        `write ${whole} for ${whole} ${currency}${exp >= 3 ? `, or fewer decimals (e.g. ${int}.${frac.replace(/0+$/, '') || '0'}) for the smaller amount` : ''}`,
    );
  }
  return fromDigits(currency, false, int, frac, text);
}

/** Why a typed amount that is not digits-with-one-mark is refused: the most helpful sentence first. */
function refusal(t: string, original: unknown): ['INVALID_AMOUNT' | 'MALFORMED', string] {
  const q = quote(original);
  if (/^[-+\u2212]/.test(t)) return ['INVALID_AMOUNT', `${q}: an amount here has no sign; it cannot be negative`];
  if (/^[0-9.,]*[eE][-+]?[0-9]+$/.test(t)) return ['INVALID_AMOUNT', `${q}: write the amount in plain digits, without an exponent`];
  if (/^[0-9][0-9.,\s\u00a0\u202f'’]*$/.test(t)) {
    return ['INVALID_AMOUNT', `${q}: write the amount without thousands separators or spaces, with at most one decimal mark`];
  }
  return ['MALFORMED', `not a number: ${q}`];
}

function fromDigits(currency: string, negative: boolean, int: string, frac: string, text: string): Amount {
  const exp = exponentOf(currency);
  if (frac.length > exp) {
    throw new ObolError(
      'INVALID_AMOUNT',
      exp === 0
        ? `${currency} has no decimal places; ${quote(text)} would have to be rounded`
        : `${currency} has ${exp} decimal places; ${quote(text)} has ${frac.length} and would have to be rounded`,
    );
  }
  const value = BigInt(int + frac.padEnd(exp, '0'));
  if (value > MAX_MINOR_UNITS) {
    throw new ObolError('INVALID_AMOUNT', `${quote(text)} is too large: ${currency} amounts are at most ${MAX_MINOR_UNITS} minor units`);
  }
  return amount(currency, negative ? -value : value);
}

/** The canonical wire string: exactly `exponent` fraction digits ("EUR:0.05", "JPY:5", "EUR:-1.20"). */
export function formatAmount(a: Amount): string {
  return `${a.currency}:${toDecimal(a)}`;
}

/**
 * For people: "0.05 EUR". With a locale, only the decimal mark follows the locale ("0,05 EUR" for
 * sv-SE); the digits are always ours, so nothing is rounded through a float.
 */
export function displayAmount(a: Amount, locale?: string): string {
  return `${toDecimal(a, locale === undefined ? '.' : decimalMark(locale))} ${a.currency}`;
}

function toDecimal(a: Amount, mark = '.'): string {
  const exp = exponentOf(a.currency);
  if (typeof a.value !== 'bigint') throw new ObolError('INVALID_AMOUNT', 'an amount value must be a bigint');
  const sign = a.value < 0n ? '-' : '';
  const digits = (a.value < 0n ? -a.value : a.value).toString().padStart(exp + 1, '0');
  if (exp === 0) return sign + digits;
  return `${sign}${digits.slice(0, -exp)}${mark}${digits.slice(-exp)}`;
}

function decimalMark(locale: string): string {
  try {
    // A bigint with a forced fraction digit shows the locale's decimal mark without any float.
    const parts = new Intl.NumberFormat(locale, { minimumFractionDigits: 1 }).formatToParts(1n);
    return parts.find((p) => p.type === 'decimal')?.value ?? '.';
  } catch {
    return '.'; // an unknown locale must not stop a price from being shown
  }
}

function quote(text: unknown): string {
  const s = typeof text === 'string' ? text : String(text);
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

// ---- arithmetic: one currency at a time; mixing is a bug the caller must see, never a silent 0 ----

function sameCurrency(a: Amount, b: Amount, op: string): void {
  if (a.currency !== b.currency) {
    throw new ObolError('CURRENCY_MISMATCH', `cannot ${op} ${a.currency} and ${b.currency}; convert first`);
  }
}

export function add(a: Amount, b: Amount): Amount {
  sameCurrency(a, b, 'add');
  return { currency: a.currency, value: a.value + b.value };
}

export function sub(a: Amount, b: Amount): Amount {
  sameCurrency(a, b, 'subtract');
  return { currency: a.currency, value: a.value - b.value };
}

export function neg(a: Amount): Amount {
  return { currency: a.currency, value: -a.value };
}

export function compare(a: Amount, b: Amount): -1 | 0 | 1 {
  sameCurrency(a, b, 'compare');
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function equals(a: Amount, b: Amount): boolean {
  return compare(a, b) === 0;
}

export function isZero(a: Amount): boolean {
  return a.value === 0n;
}

export function isNegative(a: Amount): boolean {
  return a.value < 0n;
}

export function isPositive(a: Amount): boolean {
  return a.value > 0n;
}

export function min(a: Amount, b: Amount): Amount {
  return compare(a, b) <= 0 ? a : b;
}

export function max(a: Amount, b: Amount): Amount {
  return compare(a, b) >= 0 ? a : b;
}

/** Total of a list; the currency is given so an empty list still has one. */
export function sum(currency: string, list: Iterable<Amount>): Amount {
  let total = zero(currency);
  for (const a of list) total = add(total, a);
  return total;
}
