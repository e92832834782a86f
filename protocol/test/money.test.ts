import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ErrorName, ObolError } from '../src/errors.ts';
import {
  add,
  amount,
  CURRENCY_EXPONENTS,
  compare,
  displayAmount,
  equals,
  exponentOf,
  formatAmount,
  isCurrency,
  isNegative,
  isZero,
  MAX_AMOUNT_TEXT,
  MAX_MINOR_UNITS,
  max,
  min,
  neg,
  parseAmount,
  parseDecimal,
  sub,
  sum,
} from '../src/money.ts';

const codes = Object.keys(CURRENCY_EXPONENTS);
const currency = fc.constantFrom(...codes);
// Arithmetic is unbounded bigint: well past what a ledger stores, inside what MAX_AMOUNT_TEXT allows.
const value = fc.bigInt({ min: -(10n ** 50n), max: 10n ** 50n });
const amountIn = (c: string) => value.map((v) => amount(c, v));
/** Amounts a ledger can store (a signed 64-bit count of minor units): all that text may parse to. */
const storable = fc.bigInt({ min: -MAX_MINOR_UNITS, max: MAX_MINOR_UNITS });
const anyStorableAmount = currency.chain((c) => storable.map((v) => amount(c, v)));

function errorOf(f: () => unknown): ErrorName | 'none' | 'not-obol' {
  try {
    f();
    return 'none';
  } catch (e) {
    return e instanceof ObolError ? e.name : 'not-obol';
  }
}

describe('currency table', () => {
  it('has the ISO 4217 exponents we rely on', () => {
    for (const [c, e] of Object.entries({ EUR: 2, SEK: 2, USD: 2, GBP: 2, CHF: 2, NOK: 2, DKK: 2, JPY: 0 })) {
      expect(isCurrency(c)).toBe(true);
      expect(exponentOf(c)).toBe(e);
    }
  });

  it('refuses unknown codes, including object-prototype names', () => {
    for (const c of ['XXX', 'eur', '', 'toString', '__proto__', 'constructor', 'EURO']) {
      expect(isCurrency(c)).toBe(false);
      expect(errorOf(() => exponentOf(c))).toBe('UNKNOWN_CURRENCY');
      expect(errorOf(() => amount(c, 1n))).toBe('UNKNOWN_CURRENCY');
    }
    expect(errorOf(() => parseAmount('XXX:1.00'))).toBe('UNKNOWN_CURRENCY');
    expect(errorOf(() => parseDecimal('ABC', '1'))).toBe('UNKNOWN_CURRENCY');
  });

  it('refuses a non-bigint value', () => {
    expect(errorOf(() => amount('EUR', 5 as unknown as bigint))).toBe('INVALID_AMOUNT');
  });
});

describe('wire format', () => {
  it('formats with exactly the exponent digits', () => {
    expect(formatAmount(amount('EUR', 5n))).toBe('EUR:0.05');
    expect(formatAmount(amount('EUR', 1230n))).toBe('EUR:12.30');
    expect(formatAmount(amount('EUR', -120n))).toBe('EUR:-1.20');
    expect(formatAmount(amount('EUR', -5n))).toBe('EUR:-0.05');
    expect(formatAmount(amount('EUR', 0n))).toBe('EUR:0.00');
    expect(formatAmount(amount('JPY', 5n))).toBe('JPY:5');
    expect(formatAmount(amount('JPY', -5n))).toBe('JPY:-5');
    expect(formatAmount(amount('BHD', 1n))).toBe('BHD:0.001');
  });

  it('parses canonical and shorter fractions', () => {
    expect(parseAmount('EUR:0.05')).toEqual(amount('EUR', 5n));
    expect(parseAmount('EUR:12.3')).toEqual(amount('EUR', 1230n));
    expect(parseAmount('EUR:12')).toEqual(amount('EUR', 1200n));
    expect(parseAmount('EUR:-1.20')).toEqual(amount('EUR', -120n));
    expect(parseAmount('JPY:5')).toEqual(amount('JPY', 5n));
  });

  it('rejects malformed text', () => {
    const malformed = [
      '', 'EUR', 'EUR:', 'EUR0.05', ':0.05', 'eur:0.05', 'EUR: 0.05', ' EUR:0.05', 'EUR:0.05 ', 'EUR:+0.05',
      'EUR:--1', 'EUR:1-', 'EUR:0.05.1', 'EUR:.05', 'EUR:5.', 'EUR:1e2', 'EUR:1E2', 'EUR:0x10', 'EUR:01.00',
      'EUR:1,00', 'EUR:NaN', 'EUR:Infinity', 'EUR:٣', 'EU:1', 'EURO:1', `EUR:${'1'.repeat(MAX_AMOUNT_TEXT)}`,
    ];
    for (const s of malformed) expect([s, errorOf(() => parseAmount(s))]).toEqual([s, 'MALFORMED']);
    for (const s of [undefined, null, 5, {}]) expect(errorOf(() => parseAmount(s as unknown as string))).toBe('MALFORMED');
  });

  it('rejects more fraction digits than the currency has, never rounds', () => {
    expect(errorOf(() => parseAmount('EUR:0.051'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseAmount('EUR:0.050'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseAmount('JPY:5.0'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseAmount('BHD:0.0001'))).toBe('INVALID_AMOUNT');
  });

  it('refuses amounts past what a ledger can store (2^63 - 1 minor units), whichever way they are written', () => {
    expect(parseAmount('SEK:92233720368547758.07')).toEqual(amount('SEK', MAX_MINOR_UNITS));
    expect(parseAmount('SEK:-92233720368547758.07')).toEqual(amount('SEK', -MAX_MINOR_UNITS));
    expect(errorOf(() => parseAmount('SEK:92233720368547758.08'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseAmount('JPY:9223372036854775808'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseAmount('EUR:-999999999999999999.99'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseDecimal('EUR', '92233720368547758.08'))).toBe('INVALID_AMOUNT');
  });

  it('property: parse(format(x)) == x for every storable value and currency', () => {
    fc.assert(
      fc.property(anyStorableAmount, (a) => {
        expect(parseAmount(formatAmount(a))).toEqual(a);
      }),
    );
  });

  it('property: format is canonical: format(parse(s)) == s for canonical strings', () => {
    fc.assert(
      fc.property(anyStorableAmount, (a) => {
        const s = formatAmount(a);
        expect(formatAmount(parseAmount(s))).toBe(s);
        const frac = s.split('.')[1] ?? '';
        expect(frac.length).toBe(exponentOf(a.currency));
      }),
    );
  });

  // The grammar, stated independently of the implementation.
  function grammarAccepts(s: string): boolean {
    const m = /^([A-Z]{3}):-?(0|[1-9]\d*)(?:\.(\d+))?$/.exec(s);
    if (!m || s.length > MAX_AMOUNT_TEXT) return false;
    return isCurrency(m[1]) && (m[3] ?? '').length <= exponentOf(m[1] as string);
  }
  const nearMiss = fc
    .array(fc.constantFrom(...'EURJPYSEKBHDXeur:-+.,0123456789 e\t'.split('')), { maxLength: 16 })
    .map((cs) => cs.join(''));
  const prefixed = fc.tuple(fc.constantFrom('EUR:', 'JPY:', 'BHD:', 'XXX:', 'eur:', ''), nearMiss).map(([p, s]) => p + s);

  it('property: random strings parse only when they match the grammar', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), nearMiss, prefixed), (s) => {
        const err = errorOf(() => parseAmount(s));
        if (grammarAccepts(s)) {
          expect(err).toBe('none');
          expect(parseAmount(formatAmount(parseAmount(s)))).toEqual(parseAmount(s));
        } else {
          expect(['MALFORMED', 'INVALID_AMOUNT', 'UNKNOWN_CURRENCY']).toContain(err);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('UI input and display', () => {
  it('parseDecimal reads what people type, never rounding', () => {
    expect(parseDecimal('EUR', '0.05')).toEqual(amount('EUR', 5n));
    expect(parseDecimal('EUR', ' 0,05 ')).toEqual(amount('EUR', 5n));
    expect(parseDecimal('EUR', '12')).toEqual(amount('EUR', 1200n));
    expect(parseDecimal('EUR', '.5')).toEqual(amount('EUR', 50n));
    expect(parseDecimal('EUR', '5.')).toEqual(amount('EUR', 500n));
    expect(parseDecimal('EUR', '007.10')).toEqual(amount('EUR', 710n));
    expect(parseDecimal('EUR', '-1.2')).toEqual(amount('EUR', -120n));
    expect(parseDecimal('JPY', '5')).toEqual(amount('JPY', 5n));
    for (const s of ['', ' ', '.', '-', 'abc', '1e2', '1.2.3', '+1', '1 000', '0x1']) {
      expect([s, errorOf(() => parseDecimal('EUR', s))]).toEqual([s, 'MALFORMED']);
    }
    expect(errorOf(() => parseDecimal('EUR', '0.001'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseDecimal('JPY', '0.5'))).toBe('INVALID_AMOUNT');
  });

  it('displayAmount', () => {
    expect(displayAmount(amount('EUR', 5n))).toBe('0.05 EUR');
    expect(displayAmount(amount('EUR', -120n))).toBe('-1.20 EUR');
    expect(displayAmount(amount('JPY', 1234n))).toBe('1234 JPY');
    expect(displayAmount(amount('SEK', 1050n), 'sv-SE')).toBe('10,50 SEK');
    expect(displayAmount(amount('USD', 1050n), 'en-US')).toBe('10.50 USD');
    expect(displayAmount(amount('USD', 1050n), 'not a locale!')).toBe('10.50 USD');
  });

  it('property: parseDecimal(display digits) round-trips', () => {
    fc.assert(
      fc.property(anyStorableAmount, (a) => {
        const digits = displayAmount(a).split(' ')[0] as string;
        expect(parseDecimal(a.currency, digits)).toEqual(a);
      }),
    );
  });
});

describe('arithmetic', () => {
  const pairIn = currency.chain((c) => fc.tuple(amountIn(c), amountIn(c)));

  it('property: a + b - b == a, and add/sub never create or lose a minor unit', () => {
    fc.assert(
      fc.property(pairIn, ([a, b]) => {
        expect(sub(add(a, b), b)).toEqual(a);
        expect(add(a, b).value).toBe(a.value + b.value);
        expect(add(sub(a, b), b)).toEqual(a);
        expect(add(a, neg(a)).value).toBe(0n);
        expect(add(a, b)).toEqual(add(b, a));
      }),
    );
  });

  it('property: the sum of the parts equals the total', () => {
    fc.assert(
      fc.property(
        currency.chain((c) => fc.tuple(fc.constant(c), fc.array(amountIn(c), { maxLength: 30 }))),
        ([c, parts]) => {
          const total = sum(c, parts);
          expect(total.currency).toBe(c);
          // Taking the parts away one at a time leaves exactly nothing.
          expect(isZero(parts.reduce((left, p) => sub(left, p), total))).toBe(true);
          expect(total.value).toBe(parts.reduce((s, p) => s + p.value, 0n));
        },
      ),
    );
  });

  it('property: compare/min/max agree with bigint order', () => {
    fc.assert(
      fc.property(pairIn, ([a, b]) => {
        const c = compare(a, b);
        expect(c).toBe(a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
        expect(compare(b, a)).toBe(c === 0 ? 0 : -c);
        expect(min(a, b).value <= max(a, b).value).toBe(true);
        expect(add(min(a, b), max(a, b))).toEqual(add(a, b));
        expect(equals(a, b)).toBe(a.value === b.value);
        expect(isNegative(a)).toBe(a.value < 0n);
      }),
    );
  });

  it('property: mixing currencies throws CURRENCY_MISMATCH', () => {
    const twoCurrencies = fc.uniqueArray(currency, { minLength: 2, maxLength: 2 });
    fc.assert(
      fc.property(twoCurrencies, value, value, ([c1, c2], v1, v2) => {
        const a = amount(c1 as string, v1);
        const b = amount(c2 as string, v2);
        const ops: Array<() => unknown> = [
          () => add(a, b), () => sub(a, b), () => compare(a, b), () => min(a, b), () => max(a, b),
          () => equals(a, b), () => sum(c1 as string, [a, b]), () => sum(c2 as string, [a]),
        ];
        for (const op of ops) expect(errorOf(op)).toBe('CURRENCY_MISMATCH');
      }),
    );
  });

  it('sum of an empty list is zero in the given currency', () => {
    expect(sum('JPY', [])).toEqual(amount('JPY', 0n));
    expect(errorOf(() => sum('XXX', []))).toBe('UNKNOWN_CURRENCY');
  });

  it('small worked example: 0.02 EUR articles', () => {
    const price = parseAmount('EUR:0.02');
    const fifty = sum('EUR', Array.from({ length: 50 }, () => price));
    expect(formatAmount(fifty)).toBe('EUR:1.00');
    expect(formatAmount(sub(parseAmount('EUR:0.05'), price))).toBe('EUR:0.03');
  });
});
