import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ErrorName, ObolError } from '../src/errors.ts';
import {
  type ExchangeTable,
  ONE,
  type Rate,
  type Rounding,
  convert,
  depositInMerchantCurrency,
  parseRate,
  rateBetween,
  rateToString,
  requireValidTable,
  refundInCustomerCurrency,
  settleDeposit,
  tableStatus,
  validateExchangeTable,
} from '../src/exchangeTable.ts';
import { amount, CURRENCY_EXPONENTS, exponentOf, formatAmount, parseAmount } from '../src/money.ts';

function errorOf(f: () => unknown): ErrorName | 'none' | 'not-obol' {
  try {
    f();
    return 'none';
  } catch (e) {
    return e instanceof ObolError ? e.name : 'not-obol';
  }
}

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

const sekTable: ExchangeTable = {
  operatorId: 'bank-se',
  base: 'SEK',
  rates: { EUR: '0.0874', USD: '0.0952', JPY: '14.2' },
  issuedAt: T0,
  expiresAt: T0 + HOUR,
};
const eurTable: ExchangeTable = {
  operatorId: 'bank-eu',
  base: 'EUR',
  rates: { JPY: '162.35', USD: '0.5' },
  issuedAt: T0,
  expiresAt: T0 + HOUR,
};

const codes = Object.keys(CURRENCY_EXPONENTS);
const currency = fc.constantFrom(...codes);
const value = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n });
const positive = fc.bigInt({ min: 1n, max: 10n ** 12n });
const anyRate: fc.Arbitrary<Rate> = fc.tuple(positive, positive).map(([num, den]) => ({ num, den }));
const rounding = fc.constantFrom<Rounding>('half-even', 'floor', 'ceil');

/** The exact target value of a conversion, as num/den in target minor units. */
function exact(v: bigint, from: string, to: string, r: Rate): { num: bigint; den: bigint } {
  return {
    num: v * r.num * 10n ** BigInt(exponentOf(to)),
    den: r.den * 10n ** BigInt(exponentOf(from)),
  };
}

describe('rates', () => {
  it('parses decimal strings exactly, in lowest terms', () => {
    expect(parseRate('0.0874')).toEqual({ num: 437n, den: 5000n });
    expect(parseRate('14.2')).toEqual({ num: 71n, den: 5n });
    expect(parseRate('1')).toEqual(ONE);
    expect(parseRate('5000/437')).toEqual({ num: 5000n, den: 437n });
    expect(parseRate('10/4')).toEqual({ num: 5n, den: 2n });
  });

  it('rejects non-positive and malformed rates', () => {
    for (const s of ['', '0', '0.000', '-1', '+1', '1e3', '.5', '5.', '01', ' 1', '1 ', '1,5', '1 000', '1/0', '-1/2', '1/-2', '0/1', 'NaN', '1/2/3', '1'.repeat(100)]) {
      expect([s, errorOf(() => parseRate(s))]).toEqual([s, 'MALFORMED']);
    }
  });

  it('property: parseRate(rateToString(r)) == r in lowest terms', () => {
    fc.assert(
      fc.property(anyRate, (r) => {
        const back = parseRate(rateToString(r));
        expect(back.num * r.den).toBe(r.num * back.den);
        expect(rateToString(back)).toBe(rateToString(r));
      }),
    );
    expect(rateToString({ num: 437n, den: 5000n })).toBe('0.0874');
    expect(rateToString({ num: 5000n, den: 437n })).toBe('5000/437');
    expect(rateToString({ num: 6n, den: 2n })).toBe('3');
  });

  it('rateBetween: base->C is r, C->base is 1/r, C->D is r_D/r_C', () => {
    expect(rateBetween(sekTable, 'SEK', 'EUR')).toEqual({ num: 437n, den: 5000n });
    expect(rateBetween(sekTable, 'EUR', 'SEK')).toEqual({ num: 5000n, den: 437n });
    // JPY per EUR = 14.2 / 0.0874 = (71/5) / (437/5000) = 71000/437
    expect(rateBetween(sekTable, 'EUR', 'JPY')).toEqual({ num: 71000n, den: 437n });
    expect(rateBetween(sekTable, 'EUR', 'EUR')).toEqual(ONE);
  });

  it('rateBetween: a currency the table lacks is RATE_UNAVAILABLE', () => {
    expect(errorOf(() => rateBetween(sekTable, 'SEK', 'GBP'))).toBe('RATE_UNAVAILABLE');
    expect(errorOf(() => rateBetween(sekTable, 'GBP', 'EUR'))).toBe('RATE_UNAVAILABLE');
    expect(errorOf(() => rateBetween(sekTable, 'EUR', 'XXX'))).toBe('RATE_UNAVAILABLE');
    expect(errorOf(() => rateBetween(sekTable, 'EUR', 'toString'))).toBe('RATE_UNAVAILABLE');
  });

  it('property: rates through a table compose exactly', () => {
    const inTable = fc.constantFrom('SEK', 'EUR', 'USD', 'JPY');
    fc.assert(
      fc.property(inTable, inTable, inTable, (a, b, c) => {
        const ab = rateBetween(sekTable, a, b);
        const bc = rateBetween(sekTable, b, c);
        const ac = rateBetween(sekTable, a, c);
        expect(ab.num * bc.num * ac.den).toBe(ac.num * ab.den * bc.den);
        const ba = rateBetween(sekTable, b, a);
        expect(ab.num * ba.num).toBe(ab.den * ba.den);
      }),
    );
  });
});

describe('convert', () => {
  it('EUR -> JPY (2 -> 0 decimals)', () => {
    const r = rateBetween(eurTable, 'EUR', 'JPY'); // 162.35 JPY per EUR
    const a = parseAmount('EUR:0.05'); // exactly 8.1175 JPY
    expect(formatAmount(convert(a, 'JPY', r).amount)).toBe('JPY:8');
    expect(convert(a, 'JPY', r).remainder).toEqual({ num: 47n, den: 400n });
    expect(formatAmount(convert(a, 'JPY', r, 'floor').amount)).toBe('JPY:8');
    expect(formatAmount(convert(a, 'JPY', r, 'ceil').amount)).toBe('JPY:9');
    expect(convert(a, 'JPY', r, 'ceil').remainder).toEqual({ num: -353n, den: 400n });
  });

  it('JPY -> EUR (0 -> 2 decimals)', () => {
    const r = rateBetween(eurTable, 'JPY', 'EUR');
    const a = parseAmount('JPY:5'); // 5 / 162.35 EUR = 10000/3247 cents = 3.0797...
    const c = convert(a, 'EUR', r);
    expect(formatAmount(c.amount)).toBe('EUR:0.03');
    expect(c.remainder).toEqual({ num: 259n, den: 3247n });
    expect(formatAmount(convert(a, 'EUR', r, 'ceil').amount)).toBe('EUR:0.04');
    expect(formatAmount(convert(parseAmount('JPY:100000'), 'EUR', r, 'floor').amount)).toBe('EUR:615.95');
  });

  it('half-even: ties go to the even minor unit, both signs', () => {
    const half = parseRate('0.5');
    const cases: Array<[string, string]> = [
      ['EUR:0.05', 'USD:0.02'], // 2.5 -> 2
      ['EUR:0.07', 'USD:0.04'], // 3.5 -> 4
      ['EUR:0.03', 'USD:0.02'], // 1.5 -> 2
      ['EUR:-0.05', 'USD:-0.02'],
      ['EUR:-0.07', 'USD:-0.04'],
      ['EUR:0.01', 'USD:0.00'], // 0.5 -> 0
    ];
    for (const [from, to] of cases) expect(formatAmount(convert(parseAmount(from), 'USD', half).amount)).toBe(to);
    expect(formatAmount(convert(parseAmount('EUR:-0.05'), 'USD', half, 'floor').amount)).toBe('USD:-0.03');
    expect(formatAmount(convert(parseAmount('EUR:-0.05'), 'USD', half, 'ceil').amount)).toBe('USD:-0.02');
  });

  it('a deposit converted with floor never promises the merchant more than reserved', () => {
    const deposit = parseAmount('SEK:100.00');
    const r = rateBetween(sekTable, 'SEK', 'EUR'); // 8.74 EUR exactly
    expect(formatAmount(convert(deposit, 'EUR', r, 'floor').amount)).toBe('EUR:8.74');
    const odd = parseAmount('SEK:1.23'); // 0.107502 EUR
    const c = convert(odd, 'EUR', r, 'floor');
    expect(formatAmount(c.amount)).toBe('EUR:0.10');
    expect(c.remainder).toEqual({ num: 3751n, den: 5000n });
  });

  it('identity rate and unknown target', () => {
    const a = parseAmount('EUR:1.23');
    expect(convert(a, 'EUR', ONE)).toEqual({ amount: a, remainder: { num: 0n, den: 1n } });
    expect(errorOf(() => convert(a, 'XXX', ONE))).toBe('UNKNOWN_CURRENCY');
    expect(errorOf(() => convert({ currency: 'XXX', value: 1n }, 'EUR', ONE))).toBe('UNKNOWN_CURRENCY');
    expect(errorOf(() => convert(a, 'USD', { num: 0n, den: 1n }))).toBe('MALFORMED');
    expect(errorOf(() => convert(a, 'USD', { num: 1n, den: -1n }))).toBe('MALFORMED');
    expect(errorOf(() => convert(a, 'USD', ONE, 'up' as Rounding))).toBe('MALFORMED');
  });

  it('property: amount + remainder is exactly the rational value (nothing created or lost)', () => {
    fc.assert(
      fc.property(currency, currency, value, anyRate, rounding, (from, to, v, r, mode) => {
        const { amount: out, remainder } = convert(amount(from, v), to, r, mode);
        expect(out.currency).toBe(to);
        expect(remainder.den > 0n).toBe(true);
        const x = exact(v, from, to, r);
        // (out + remainder) == x.num / x.den
        expect((out.value * remainder.den + remainder.num) * x.den).toBe(x.num * remainder.den);
      }),
    );
  });

  it('property: floor never exceeds the exact value, ceil never below, half-even within half a unit', () => {
    fc.assert(
      fc.property(currency, currency, value, anyRate, (from, to, v, r) => {
        const a = amount(from, v);
        const x = exact(v, from, to, r);
        const f = convert(a, to, r, 'floor');
        const c = convert(a, to, r, 'ceil');
        const h = convert(a, to, r, 'half-even');
        expect(f.amount.value * x.den <= x.num).toBe(true);
        expect((f.amount.value + 1n) * x.den > x.num).toBe(true);
        expect(c.amount.value * x.den >= x.num).toBe(true);
        expect((c.amount.value - 1n) * x.den < x.num).toBe(true);
        expect(f.remainder.num >= 0n && c.remainder.num <= 0n).toBe(true);
        const absNum = h.remainder.num < 0n ? -h.remainder.num : h.remainder.num;
        expect(2n * absNum <= h.remainder.den).toBe(true);
        expect(h.amount.value === f.amount.value || h.amount.value === c.amount.value).toBe(true);
      }),
    );
  });

  it('property: deterministic, and independent of how the rate is written', () => {
    fc.assert(
      fc.property(currency, currency, value, anyRate, rounding, positive, (from, to, v, r, mode, k) => {
        const a = amount(from, v);
        const once = convert(a, to, r, mode);
        expect(convert(a, to, r, mode)).toEqual(once);
        expect(convert(a, to, { num: r.num * k, den: r.den * k }, mode)).toEqual(once);
        expect(convert(a, to, parseRate(rateToString(r)), mode)).toEqual(once);
      }),
    );
  });

  it('property: negating the input mirrors floor and ceil', () => {
    fc.assert(
      fc.property(currency, currency, value, anyRate, (from, to, v, r) => {
        const up = convert(amount(from, v), to, r, 'ceil').amount.value;
        const down = convert(amount(from, -v), to, r, 'floor').amount.value;
        expect(down).toBe(-up);
      }),
    );
  });
});

describe('validateExchangeTable', () => {
  it('accepts a good table and returns a clean copy', () => {
    const extra = { ...sekTable, rates: { ...sekTable.rates, SEK: '1' }, signature: 'x' };
    const t = validateExchangeTable(JSON.parse(JSON.stringify(extra)));
    expect(t).toEqual({ ...sekTable, rates: { ...sekTable.rates, SEK: '1' } });
    expect('signature' in t).toBe(false);
  });

  it('refuses broken tables', () => {
    const bad: Array<[unknown, ErrorName]> = [
      [null, 'MALFORMED'],
      ['table', 'MALFORMED'],
      [[], 'MALFORMED'],
      [{ ...sekTable, operatorId: '' }, 'MALFORMED'],
      [{ ...sekTable, base: 'XXX' }, 'UNKNOWN_CURRENCY'],
      [{ ...sekTable, base: 5 }, 'MALFORMED'],
      [{ ...sekTable, rates: null }, 'MALFORMED'],
      [{ ...sekTable, rates: { XXX: '1.0' } }, 'UNKNOWN_CURRENCY'],
      [JSON.parse('{"operatorId":"o","base":"EUR","rates":{"__proto__":"1"},"issuedAt":1,"expiresAt":2}'), 'UNKNOWN_CURRENCY'],
      [{ ...sekTable, rates: { EUR: '0' } }, 'MALFORMED'],
      [{ ...sekTable, rates: { EUR: '-0.08' } }, 'MALFORMED'],
      [{ ...sekTable, rates: { EUR: '8.74e-2' } }, 'MALFORMED'],
      [{ ...sekTable, rates: { EUR: 0.0874 } }, 'MALFORMED'],
      [{ ...sekTable, rates: { EUR: '437/5000' } }, 'MALFORMED'],
      [{ ...sekTable, rates: { SEK: '2' } }, 'MALFORMED'],
      [{ ...sekTable, issuedAt: '2026' }, 'MALFORMED'],
      [{ ...sekTable, expiresAt: 1.5 }, 'MALFORMED'],
      [{ ...sekTable, expiresAt: sekTable.issuedAt }, 'MALFORMED'],
    ];
    for (const [input, name] of bad) expect([input, errorOf(() => validateExchangeTable(input))]).toEqual([input, name]);
  });
});

describe('tableStatus', () => {
  it('missing / valid / expired at explicit times', () => {
    expect(tableStatus(undefined, T0)).toBe('missing');
    expect(tableStatus(sekTable, T0)).toBe('valid');
    expect(tableStatus(sekTable, T0 + HOUR - 1)).toBe('valid');
    expect(tableStatus(sekTable, T0 + HOUR)).toBe('expired');
    expect(tableStatus(sekTable, T0 + 2 * HOUR)).toBe('expired');
    // Issued "in the future" by our clock: clock skew; the rate is fresh, so it is valid.
    expect(tableStatus(sekTable, T0 - 5_000)).toBe('valid');
  });

  it('requireValidTable throws the matching error', () => {
    expect(requireValidTable(sekTable, T0 + 1)).toBe(sekTable);
    expect(errorOf(() => requireValidTable(undefined, T0))).toBe('EXCHANGE_TABLE_MISSING');
    expect(errorOf(() => requireValidTable(sekTable, T0 + HOUR))).toBe('EXCHANGE_TABLE_EXPIRED');
  });
});

describe('a deposit, once at initiation and once at clearing (the rules operator and wallet share)', () => {
  const pinned = parseRate('0.0874'); // EUR per SEK, as Svea Bank pinned it

  it('is promised to the merchant rounded down, and settled back half-even: what the wallet shows is what is refunded', () => {
    const deposit = parseAmount('SEK:20.00');
    expect(formatAmount(depositInMerchantCurrency(deposit, 'EUR', pinned))).toBe('EUR:1.74');
    const { chargedCustomer, refundCustomer } = settleDeposit(deposit, parseAmount('EUR:0.03'), pinned);
    // 0.03 / 0.0874 = 0.3432…: SEK 0.34 charged, SEK 19.66 back (not 20.00 × 1.71 / 1.74 = 19.655… cut to 19.65).
    expect([formatAmount(chargedCustomer), formatAmount(refundCustomer)]).toEqual(['SEK:0.34', 'SEK:19.66']);
    // Never more than the deposit, however the rounding falls.
    expect(formatAmount(settleDeposit(deposit, depositInMerchantCurrency(deposit, 'EUR', pinned), pinned).refundCustomer)).toBe('SEK:0.09');
  });

  it('property: charged + refunded = the deposit, neither negative', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10_000_000n }), fc.bigInt({ min: 0n, max: 100n }), (sekMinor, percent) => {
        const deposit = amount('SEK', sekMinor);
        const merchant = depositInMerchantCurrency(deposit, 'EUR', pinned);
        const charged = amount('EUR', (merchant.value * percent) / 100n);
        const { chargedCustomer, refundCustomer } = settleDeposit(deposit, charged, pinned);
        expect(chargedCustomer.value + refundCustomer.value).toBe(deposit.value);
        expect(chargedCustomer.value >= 0n && refundCustomer.value >= 0n).toBe(true);
      }),
    );
  });
});

describe('a refund after clearing (the rule the customer operator credits by)', () => {
  const pinned = parseRate('0.0874'); // EUR per SEK
  const charged = parseAmount('EUR:0.06');
  const chargedCustomer = settleDeposit(parseAmount('SEK:2.00'), charged, pinned).chargedCustomer; // SEK 0.69

  it('converts back half-even; refunds of the whole charge give back exactly what was charged, in any order', () => {
    expect(formatAmount(chargedCustomer)).toBe('SEK:0.69');
    const first = refundInCustomerCurrency(chargedCustomer, parseAmount('EUR:0.03'), parseAmount('EUR:0.03'), pinned);
    const second = refundInCustomerCurrency(chargedCustomer, parseAmount('EUR:0.06'), parseAmount('EUR:0.03'), pinned);
    // 0.03 / 0.0874 = 0.3432 → 0.34; 0.06 / 0.0874 = 0.6865 → 0.69, so the second is 0.35.
    expect([formatAmount(first), formatAmount(second)]).toEqual(['SEK:0.34', 'SEK:0.35']);
    expect(formatAmount(refundInCustomerCurrency(chargedCustomer, charged, charged, pinned))).toBe('SEK:0.69');
  });

  it('refuses figures that are not a refund of its total', () => {
    expect(errorOf(() => refundInCustomerCurrency(chargedCustomer, parseAmount('EUR:0.02'), parseAmount('EUR:0.03'), pinned))).toBe('AMOUNT_EXCEEDS_SIGNED');
    expect(errorOf(() => refundInCustomerCurrency(chargedCustomer, parseAmount('EUR:0.02'), parseAmount('EUR:0.00'), pinned))).toBe('AMOUNT_EXCEEDS_SIGNED');
    expect(errorOf(() => refundInCustomerCurrency(chargedCustomer, parseAmount('EUR:0.02'), parseAmount('SEK:0.01'), pinned))).toBe('CURRENCY_MISMATCH');
  });

  it('property: refunds adding up to the charge, in pieces of any size, credit exactly the charged amount, each piece no negative', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 1_000_000n }), fc.array(fc.bigInt({ min: 1n, max: 1000n }), { minLength: 1, maxLength: 12 }), (chargedMinor, weights) => {
        const chargedEur = amount('EUR', chargedMinor);
        const deposit = amount('SEK', chargedMinor * 12n + 100n);
        const customer = settleDeposit(deposit, chargedEur, pinned).chargedCustomer;
        const sum = weights.reduce((a, b) => a + b, 0n);
        // Pieces proportional to the weights, the last one taking what rounding left.
        const pieces = weights.map((w) => (chargedMinor * w) / sum);
        pieces[pieces.length - 1]! += chargedMinor - pieces.reduce((a, b) => a + b, 0n);
        let total = 0n;
        let credited = 0n;
        for (const p of pieces.filter((x) => x > 0n)) {
          total += p;
          const c = refundInCustomerCurrency(customer, amount('EUR', total), amount('EUR', p), pinned);
          expect(c.value >= 0n).toBe(true);
          credited += c.value;
        }
        expect(credited).toBe(customer.value);
      }),
    );
  });
});
