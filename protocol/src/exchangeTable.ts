import { ObolError } from './errors.ts';
import type { KeyResolver, Signer } from './keys.ts';
import { type Amount, amount, exponentOf, isCurrency, min } from './money.ts';
import { type Signed, signMessage, verifyMessage } from './signed.ts';
import { type WebCrypto, defaultCrypto } from './webcrypto.ts';

/**
 * An operator's exchange table: the rates it promises for a while. `rates[C]` is a positive decimal
 * string saying how many major units of C one major unit of `base` buys (base SEK, rates
 * { EUR: "0.0874" }: 1 SEK buys 0.0874 EUR). Times are ms since the epoch. Signing is not done
 * here: the signed table is an envelope around this payload.
 */
export interface ExchangeTable {
  operatorId: string;
  base: string;
  rates: Record<string, string>;
  issuedAt: number;
  expiresAt: number;
}

/** An exact rational, `den > 0`, kept in lowest terms. */
export interface Fraction {
  num: bigint;
  den: bigint;
}

/** A conversion rate: a Fraction that is strictly positive. Major units of target per major unit of source. */
export type Rate = Fraction;

export type Rounding = 'half-even' | 'floor' | 'ceil';

export interface Conversion {
  amount: Amount;
  /**
   * exact − amount, in target minor units, exactly. Booking it to the operator's FX account makes
   * the conversion balance to the last fraction of a minor unit. floor: 0 <= r < 1; ceil: -1 < r <= 0;
   * half-even: |r| <= 1/2.
   */
  remainder: Fraction;
}

export type TableStatus = 'missing' | 'expired' | 'valid';

/** Decimal rates as they appear in tables ("0.0874", "14", no sign, no exponent, no leading zeros). */
export const RATE_PATTERN = '^(0|[1-9][0-9]*)(\\.[0-9]+)?$';
const DECIMAL = new RegExp(RATE_PATTERN);
// rateToString writes non-terminating rates (e.g. EUR->SEK = 1/0.0874) as "num/den"; parseRate reads them back.
const FRACTION = /^([1-9][0-9]*)\/([1-9][0-9]*)$/;
const MAX_RATE_TEXT = 80;

export const ONE: Rate = Object.freeze({ num: 1n, den: 1n }); // shared, so frozen

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

function fraction(num: bigint, den: bigint): Fraction {
  if (den <= 0n) throw new ObolError('MALFORMED', 'a fraction needs a positive denominator');
  const g = gcd(num, den); // >= 1 because den > 0
  return { num: num / g, den: den / g };
}

function rate(num: bigint, den: bigint): Rate {
  if (num <= 0n || den <= 0n) throw new ObolError('MALFORMED', 'an exchange rate must be positive');
  return fraction(num, den);
}

/** Read a rate: a positive decimal ("0.0874") or a fraction from `rateToString` ("5000/437"). */
export function parseRate(text: string): Rate {
  if (typeof text === 'string' && text.length <= MAX_RATE_TEXT) {
    const d = DECIMAL.exec(text);
    if (d) {
      const frac = d[2]?.slice(1) ?? '';
      return rate(BigInt((d[1] ?? '') + frac), 10n ** BigInt(frac.length));
    }
    const f = FRACTION.exec(text);
    if (f) return rate(BigInt(f[1] ?? ''), BigInt(f[2] ?? ''));
  }
  throw new ObolError('MALFORMED', `not a positive exchange rate: ${JSON.stringify(String(text).slice(0, 40))}`);
}

/**
 * Exact text of a rate, for pinning it in a signed message: a decimal when it terminates
 * ("0.0874"), otherwise "num/den". parseRate(rateToString(r)) equals r.
 */
export function rateToString(r: Rate): string {
  const { num, den } = rate(r.num, r.den);
  let twos = 0;
  let fives = 0;
  let rest = den;
  while (rest % 2n === 0n) [rest, twos] = [rest / 2n, twos + 1];
  while (rest % 5n === 0n) [rest, fives] = [rest / 5n, fives + 1];
  if (rest !== 1n) return `${num}/${den}`;
  const places = Math.max(twos, fives);
  const digits = ((num * 10n ** BigInt(places)) / den).toString().padStart(places + 1, '0');
  return places === 0 ? digits : `${digits.slice(0, -places)}.${digits.slice(-places)}`;
}

/**
 * Check an untrusted table (e.g. JSON from the network) and return a clean copy holding only the
 * known fields. Throws MALFORMED, or UNKNOWN_CURRENCY for a currency not in our ISO table.
 */
export function validateExchangeTable(input: unknown): ExchangeTable {
  const bad = (why: string) => new ObolError('MALFORMED', `exchange table: ${why}`);
  if (!isPlainObject(input)) throw bad('not an object');
  const { operatorId, base, rates, issuedAt, expiresAt } = input;
  if (typeof operatorId !== 'string' || operatorId === '') throw bad('operatorId must be a non-empty string');
  if (typeof base !== 'string') throw bad('base must be a currency code');
  exponentOf(base);
  if (!isPlainObject(rates)) throw bad('rates must be an object');
  const clean: Record<string, string> = {};
  for (const [code, text] of Object.entries(rates)) {
    exponentOf(code);
    if (typeof text !== 'string' || !DECIMAL.test(text)) throw bad(`rate for ${code} must be a decimal string`);
    const r = parseRate(text); // refuses zero
    // The base may be listed only as itself at 1; any other rate would contradict `base`.
    if (code === base && !(r.num === 1n && r.den === 1n)) throw bad('the base currency can only have rate 1');
    clean[code] = text;
  }
  if (!isTime(issuedAt) || !isTime(expiresAt)) throw bad('issuedAt and expiresAt must be ms since the epoch');
  if (expiresAt <= issuedAt) throw bad('expiresAt must be after issuedAt');
  return { operatorId, base, rates: clean, issuedAt, expiresAt };
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isTime(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Major units of `c` per major unit of the table's base. */
function rateFromBase(table: ExchangeTable, c: string): Rate {
  if (c === table.base) return ONE;
  const text = Object.hasOwn(table.rates, c) ? table.rates[c] : undefined;
  if (text === undefined) {
    throw new ObolError('RATE_UNAVAILABLE', `operator ${table.operatorId} has no rate for ${c} (base ${table.base})`);
  }
  return parseRate(text);
}

/**
 * Exact rate from `from` to `to` (major units of `to` per major unit of `from`):
 * base->C is r_C, C->base is 1/r_C, C->D is r_D / r_C, and a known currency to itself is 1 whether
 * listed or not. A currency the table lacks -> RATE_UNAVAILABLE.
 */
export function rateBetween(table: ExchangeTable, from: string, to: string): Rate {
  if (from === to && isCurrency(from)) return ONE;
  const f = rateFromBase(table, from);
  const t = rateFromBase(table, to);
  return rate(t.num * f.den, t.den * f.num);
}

/**
 * Convert exactly, then round once. The exact value in target minor units is
 *   value * rate * 10^exp(to) / 10^exp(from)
 * and `remainder` is what rounding left out, so amount + remainder is that exact value.
 *
 * Rounding rules (one per call, nothing else rounds):
 * - 'half-even' (default): to the nearest minor unit, ties to even. Unbiased over many
 *   conversions, so it is what the wallet uses to show a price in the shopper's currency.
 * - 'floor' (toward -infinity): the operator converts a reserved deposit into the merchant's
 *   currency with floor, so the merchant is never promised more than the customer's reserve
 *   covers; the fraction stays with the operator's FX account.
 * - 'ceil' (toward +infinity): the other direction of the same promise, e.g. how much of the
 *   customer's currency to reserve so that a price in the merchant's currency is fully covered.
 */
export function convert(from: Amount, to: string, r: Rate, rounding: Rounding = 'half-even'): Conversion {
  const { num: rn, den: rd } = rate(r.num, r.den);
  const num = from.value * rn * 10n ** BigInt(exponentOf(to));
  const den = rd * 10n ** BigInt(exponentOf(from.currency));
  const q = roundDiv(num, den, rounding);
  return { amount: amount(to, q), remainder: fraction(num - q * den, den) };
}

const ROUNDINGS: readonly string[] = ['half-even', 'floor', 'ceil'] satisfies Rounding[];

/** n/d rounded to an integer by `mode`; d > 0. */
function roundDiv(n: bigint, d: bigint, mode: Rounding): bigint {
  // Checked up front so a bad rule fails every time, not only when the division is inexact.
  if (!ROUNDINGS.includes(mode)) throw new ObolError('MALFORMED', `unknown rounding rule: ${JSON.stringify(mode)}`);
  let f = n / d; // bigint division truncates toward zero; make it floor
  if (n % d !== 0n && n < 0n) f -= 1n;
  const r = n - f * d; // 0 <= r < d
  if (r === 0n || mode === 'floor') return f;
  if (mode === 'ceil') return f + 1n;
  const twice = 2n * r; // half-even: compare r with d/2 without leaving integers
  if (twice !== d) return twice < d ? f : f + 1n;
  return f % 2n === 0n ? f : f + 1n;
}

/**
 * Is the table usable at `now`? Valid means now < expiresAt. An issuedAt later than `now` is
 * tolerated: that is clock skew between wallet and operator, and a table from the "future" is fresh,
 * not stale — the lifespan exists to bound how old a rate can be.
 */
export function tableStatus(table: ExchangeTable | undefined, now: number): TableStatus {
  if (!table) return 'missing';
  return now < table.expiresAt ? 'valid' : 'expired';
}

/** The table, if valid at `now`; otherwise EXCHANGE_TABLE_MISSING or EXCHANGE_TABLE_EXPIRED. */
export function requireValidTable(table: ExchangeTable | undefined, now: number): ExchangeTable {
  const status = tableStatus(table, now);
  if (!table || status === 'missing') throw new ObolError('EXCHANGE_TABLE_MISSING', 'no exchange table; fetch one from the operator');
  if (status === 'expired') {
    throw new ObolError('EXCHANGE_TABLE_EXPIRED', `exchange table of ${table.operatorId} expired at ${table.expiresAt} (now ${now}); fetch a new one`);
  }
  return table;
}

// ── signed tables ────────────────────────────────────────────────────────────────────────────
// An operator publishes its table as a signed `operator.exchangeTable` message; a wallet trusts
// only the table of its own operator (the key from its operator's certificate).

export async function signExchangeTable(table: ExchangeTable, signer: Signer): Promise<Signed<'operator.exchangeTable'>> {
  return signMessage('operator.exchangeTable', validateExchangeTable(table), signer);
}

/** Verify a published table: signature by the expected operator, schema, and the table rules. */
export async function verifyExchangeTable(
  message: unknown,
  expectedOperatorId: string,
  resolveKey: KeyResolver,
  crypto: WebCrypto = defaultCrypto(),
): Promise<ExchangeTable> {
  const signed = await verifyMessage(message, 'operator.exchangeTable', resolveKey, crypto);
  if (signed.body.operatorId !== expectedOperatorId) {
    throw new ObolError('UNKNOWN_OPERATOR', `exchange table of ${signed.body.operatorId}, expected ${expectedOperatorId}`);
  }
  return validateExchangeTable(signed.body);
}

/**
 * The one rule for a deposit at initiation: reserved in the customer's currency, promised to the
 * merchant in its own at the pinned rate (customer → merchant), rounded down, so the merchant is
 * never promised more than the reserve covers (the fraction stays with the operator's FX account).
 */
export function depositInMerchantCurrency(depositCustomer: Amount, merchantCurrency: string, pinned: Rate): Amount {
  return convert(depositCustomer, merchantCurrency, pinned, 'floor').amount;
}

/** What a deposit comes to in the customer's currency once `charged` (merchant currency) of it is spent. */
export interface DepositSettlement {
  chargedCustomer: Amount;
  refundCustomer: Amount;
}

/**
 * The one rule for a deposit in the customer's currency, at the session's pinned rate `pinned`
 * (merchant units per customer unit, as the operator fixed it at initiation): the merchant's charge
 * converted back half-even, never more than the deposit, and the rest refunded. The operator books
 * exactly this at clearing (its withdrawal record), and the wallet shows it as "spent" and "left"
 * while the session runs, so the shopper's figure and the bank's agree to the minor unit.
 */
export function settleDeposit(depositCustomer: Amount, charged: Amount, pinned: Rate): DepositSettlement {
  const back = rate(pinned.den, pinned.num);
  let chargedCustomer = convert(charged, depositCustomer.currency, back, 'half-even').amount;
  if (chargedCustomer.value > depositCustomer.value) chargedCustomer = depositCustomer;
  return { chargedCustomer, refundCustomer: amount(depositCustomer.currency, depositCustomer.value - chargedCustomer.value) };
}

/**
 * The one rule for a refund after clearing, at the transaction's pinned rate (as `settleDeposit`:
 * merchant units per customer unit): the refunds of a transaction up to and including this one,
 * `refundedTotal` in the merchant's currency, come to their half-even conversion back, never more
 * than the shopper was charged (`chargedCustomer`); this refund is what that figure grew by. So a
 * full refund gives back exactly what was charged, and refunds applied in any order add up to the
 * conversion of their total. Throws AMOUNT_EXCEEDS_SIGNED when `refund` is more than
 * `refundedTotal` (a message whose figures are not the acquirer's).
 */
export function refundInCustomerCurrency(chargedCustomer: Amount, refundedTotal: Amount, refund: Amount, pinned: Rate): Amount {
  if (refund.currency !== refundedTotal.currency) throw new ObolError('CURRENCY_MISMATCH', 'a refund and its total are in one currency');
  if (refund.value <= 0n || refund.value > refundedTotal.value) {
    throw new ObolError('AMOUNT_EXCEEDS_SIGNED', 'a refund is more than zero and no more than the refunds of its transaction');
  }
  const back = rate(pinned.den, pinned.num);
  const inCustomer = (value: bigint): bigint => min(convert(amount(refund.currency, value), chargedCustomer.currency, back, 'half-even').amount, chargedCustomer).value;
  return amount(chargedCustomer.currency, inCustomer(refundedTotal.value) - inCustomer(refundedTotal.value - refund.value));
}
