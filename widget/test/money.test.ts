import { ObolError } from '@obol/protocol/errors';
import { describe, expect, it } from 'vitest';
import { canonicalWirePrice, displayMoney, wirePrice } from '../src/money.ts';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof ObolError ? e.name : `not an ObolError: ${String(e)}`;
  }
  return 'no error';
}

describe('wirePrice: price + currency attributes → the wire string', () => {
  it('builds the canonical string', () => {
    expect(wirePrice('0.03', 'EUR')).toBe('EUR:0.03');
    expect(wirePrice('0.3', 'EUR')).toBe('EUR:0.30');
    expect(wirePrice('2', 'SEK')).toBe('SEK:2.00');
    expect(wirePrice(' 0.05 ', ' eur ')).toBe('EUR:0.05');
    expect(wirePrice('5', 'JPY')).toBe('JPY:5');
    expect(wirePrice('0.125', 'BHD')).toBe('BHD:0.125');
  });

  it('refuses what is not a positive price of a known currency, never rounding', () => {
    expect(codeOf(() => wirePrice('0.031', 'EUR'))).toBe('INVALID_AMOUNT');
    expect(codeOf(() => wirePrice('0.5', 'JPY'))).toBe('INVALID_AMOUNT');
    expect(codeOf(() => wirePrice('0', 'EUR'))).toBe('INVALID_AMOUNT');
    expect(codeOf(() => wirePrice('0.00', 'EUR'))).toBe('INVALID_AMOUNT');
    expect(codeOf(() => wirePrice('-1', 'EUR'))).toBe('MALFORMED');
    expect(codeOf(() => wirePrice('0,03', 'EUR'))).toBe('MALFORMED');
    expect(codeOf(() => wirePrice('1e3', 'EUR'))).toBe('MALFORMED');
    expect(codeOf(() => wirePrice('', 'EUR'))).toBe('MALFORMED');
    expect(codeOf(() => wirePrice(null, 'EUR'))).toBe('MALFORMED');
    expect(codeOf(() => wirePrice('1'.repeat(19), 'EUR'))).toBe('MALFORMED');
    expect(codeOf(() => wirePrice('0.03', 'XXX'))).toBe('UNKNOWN_CURRENCY');
    expect(codeOf(() => wirePrice('0.03', 'euro'))).toBe('UNKNOWN_CURRENCY');
    expect(codeOf(() => wirePrice('0.03', undefined))).toBe('UNKNOWN_CURRENCY');
    expect(codeOf(() => wirePrice('0.03', 'toString'))).toBe('UNKNOWN_CURRENCY');
  });

  it('checks and canonicalises wire prices given to Obol.quote', () => {
    expect(canonicalWirePrice('EUR:0.3')).toBe('EUR:0.30');
    expect(canonicalWirePrice('SEK:12')).toBe('SEK:12.00');
    expect(codeOf(() => canonicalWirePrice('EUR:-0.30'))).toBe('INVALID_AMOUNT');
    expect(codeOf(() => canonicalWirePrice('EUR:0'))).toBe('INVALID_AMOUNT');
    expect(codeOf(() => canonicalWirePrice('0.30 EUR'))).toBe('MALFORMED');
    expect(codeOf(() => canonicalWirePrice(3))).toBe('MALFORMED');
  });

  it('shows wire amounts as people read them', () => {
    expect(displayMoney('EUR:0.03')).toBe('0.03 EUR');
    expect(displayMoney('SEK:0.34')).toBe('0.34 SEK');
    expect(displayMoney('JPY:5')).toBe('5 JPY');
    expect(displayMoney('nonsense')).toBe('nonsense');
  });
});
