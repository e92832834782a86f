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
// The most a ledger stores, and so the most any parser reads.
const LIMIT = MAX_MINOR_UNITS;
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
      'EUR:1,00', 'EUR:-0', 'EUR:-0.00', 'JPY:-0', 'EUR:NaN', 'EUR:Infinity', 'EUR:٣', 'EU:1', 'EURO:1', `EUR:${'1'.repeat(MAX_AMOUNT_TEXT)}`,
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

  it('refuses what would not fit a ledger, never wraps: the bound holds for every spelling', () => {
    for (const s of ['EUR:92233720368547758.08', 'EUR:100000000000000000.00', 'JPY:10000000000000000000', 'BHD:9223372036854775.808']) {
      expect([s, errorOf(() => parseAmount(s))]).toEqual([s, 'INVALID_AMOUNT']);
    }
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
    const m = /^([A-Z]{3}):(-?)(0|[1-9]\d*)(?:\.(\d+))?$/.exec(s);
    if (!m || s.length > MAX_AMOUNT_TEXT) return false;
    if (!isCurrency(m[1])) return false;
    const exp = exponentOf(m[1] as string);
    const frac = m[4] ?? '';
    if (frac.length > exp) return false;
    const minor = BigInt((m[3] ?? '') + frac.padEnd(exp, '0'));
    return minor <= LIMIT && !(m[2] === '-' && minor === 0n);
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
  function reason(f: () => unknown): string {
    try {
      f();
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  }

  it('parseDecimal reads what people type, never rounding', () => {
    expect(parseDecimal('EUR', '0.05')).toEqual(amount('EUR', 5n));
    expect(parseDecimal('EUR', ' 0,05 ')).toEqual(amount('EUR', 5n));
    expect(parseDecimal('EUR', '12')).toEqual(amount('EUR', 1200n));
    expect(parseDecimal('EUR', '.5')).toEqual(amount('EUR', 50n));
    expect(parseDecimal('EUR', '5.')).toEqual(amount('EUR', 500n));
    expect(parseDecimal('EUR', '007.10')).toEqual(amount('EUR', 710n));
    expect(parseDecimal('JPY', '5')).toEqual(amount('JPY', 5n));
    expect(parseDecimal('BHD', '1000')).toEqual(amount('BHD', 1000000n));
    expect(parseDecimal('BHD', '1.5')).toEqual(amount('BHD', 1500n));
    expect(parseDecimal('BHD', '0,250')).toEqual(amount('BHD', 250n)); // "0,250" groups nothing
    expect(parseDecimal('BHD', '1234.500')).toEqual(amount('BHD', 1234500n)); // four integer digits: no group
    for (const s of ['', ' ', '.', ',', 'abc', '0x1', '1a', '½', '٣']) {
      expect([s, errorOf(() => parseDecimal('EUR', s))]).toEqual([s, 'MALFORMED']);
    }
    expect(errorOf(() => parseDecimal('EUR', '0.001'))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseDecimal('JPY', '0.5'))).toBe('INVALID_AMOUNT');
  });

  it('refuses a thousands separator that could be read as a decimal mark, and says why', () => {
    // The defect: BHD has three decimals, so "1,000" was read as BHD 1.000, 1000 times too small.
    for (const c of ['BHD', 'KWD', 'EUR', 'JPY']) {
      for (const s of ['1,000', '1.000', '12,345', '999.999', '100,000']) {
        expect([c, s, errorOf(() => parseDecimal(c, s))]).toEqual([c, s, 'INVALID_AMOUNT']);
      }
    }
    expect(reason(() => parseDecimal('BHD', '1,000'))).toMatch(/ambiguous.*thousands/);
    // Several groups or a group and a mark: no separators at all.
    for (const s of ['1,000,000', '1.000.000', '1,000.50', '1.000,50', '1 000', '1\u00a0000', "1'000", '1.2.3']) {
      expect([s, errorOf(() => parseDecimal('EUR', s))]).toEqual([s, 'INVALID_AMOUNT']);
      expect(reason(() => parseDecimal('EUR', s))).toMatch(/separators/);
    }
  });

  it('with a stated decimal mark, three decimals are not ambiguous and the other mark is refused', () => {
    expect(parseDecimal('BHD', '1.000', { decimalMark: '.' })).toEqual(amount('BHD', 1000n));
    expect(parseDecimal('BHD', '1,234', { decimalMark: ',' })).toEqual(amount('BHD', 1234n));
    expect(errorOf(() => parseDecimal('BHD', '1,000', { decimalMark: '.' }))).toBe('INVALID_AMOUNT');
    expect(errorOf(() => parseDecimal('EUR', '1.50', { decimalMark: ',' }))).toBe('INVALID_AMOUNT');
  });

  it('refuses signs, exponents, too many digits, and says why', () => {
    for (const s of ['-1.2', '-0', '+1', '+0.05', '\u22121', ' -5 ']) {
      expect([s, errorOf(() => parseDecimal('EUR', s))]).toEqual([s, 'INVALID_AMOUNT']);
      expect(reason(() => parseDecimal('EUR', s))).toMatch(/sign/);
    }
    for (const s of ['1e2', '1E2', '1.5e3', '1e-2']) {
      expect([s, errorOf(() => parseDecimal('EUR', s))]).toEqual([s, 'INVALID_AMOUNT']);
      expect(reason(() => parseDecimal('EUR', s))).toMatch(/exponent/);
    }
    expect(reason(() => parseDecimal('EUR', '0.051'))).toMatch(/2 decimal places.*rounded/);
    expect(parseDecimal('EUR', '92233720368547758.07')).toEqual(amount('EUR', LIMIT));
    expect(parseDecimal('EUR', '00092233720368547758.07')).toEqual(amount('EUR', LIMIT));
    for (const s of ['92233720368547758.08', '9223372036854775807', '1'.repeat(MAX_AMOUNT_TEXT + 1)]) {
      expect([s, errorOf(() => parseDecimal('EUR', s))]).toEqual([s, 'INVALID_AMOUNT']);
    }
  });

  it('displayAmount', () => {
    expect(displayAmount(amount('EUR', 5n))).toBe('0.05 EUR');
    expect(displayAmount(amount('EUR', -120n))).toBe('-1.20 EUR');
    expect(displayAmount(amount('JPY', 1234n))).toBe('1234 JPY');
    expect(displayAmount(amount('SEK', 1050n), 'sv-SE')).toBe('10,50 SEK');
    expect(displayAmount(amount('USD', 1050n), 'en-US')).toBe('10.50 USD');
    expect(displayAmount(amount('USD', 1050n), 'not a locale!')).toBe('10.50 USD');
  });

  const nonNegative = currency.chain((c) => fc.bigInt({ min: 0n, max: LIMIT }).map((v) => amount(c, v)));

  it('property: format then parse with the mark it was written with round-trips', () => {
    fc.assert(
      fc.property(nonNegative, fc.constantFrom('en-US', 'sv-SE', 'de-DE'), (a, locale) => {
        const digits = displayAmount(a, locale).split(' ')[0] as string;
        const mark = digits.includes(',') ? ',' : '.';
        expect(parseDecimal(a.currency, digits, { decimalMark: mark })).toEqual(a);
        expect(parseDecimal(a.currency, formatAmount(a).split(':')[1] as string, { decimalMark: '.' })).toEqual(a);
      }),
    );
  });

  // Typed-looking strings: digits, both marks, spaces, signs, exponents.
  const typed = fc
    .array(fc.constantFrom(...'0123456789.,  -+e'.split('')), { minLength: 1, maxLength: 14 })
    .map((cs) => cs.join(''));

  it('property: no separator ambiguity: whatever is accepted has only one reading, and it is the one returned', () => {
    fc.assert(
      fc.property(currency, fc.oneof(typed, fc.string()), (c, s) => {
        let a: ReturnType<typeof parseDecimal>;
        try {
          a = parseDecimal(c, s);
        } catch (e) {
          expect(e).toBeInstanceOf(ObolError);
          expect(['MALFORMED', 'INVALID_AMOUNT']).toContain((e as ObolError).name);
          return;
        }
        const t = s.trim();
        // Could a person have meant separators as thousands groups? Then it must not have been accepted.
        expect(/^[1-9][0-9]{0,2}([.,][0-9]{3})+$/.test(t)).toBe(false);
        // One mark at most, no sign, no exponent, no inner space; never negative, never over the bound.
        expect(/^[0-9]*[.,]?[0-9]*$/.test(t)).toBe(true);
        expect(a.value >= 0n && a.value <= LIMIT).toBe(true);
        // The reading with the mark as the decimal mark is the value returned, exactly.
        const [int = '', frac = ''] = t.split(/[.,]/);
        expect(a.value).toBe(BigInt(int + frac.padEnd(exponentOf(c), '0') || '0'));
      }),
      { numRuns: 3000 },
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
