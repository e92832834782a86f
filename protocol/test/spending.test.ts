import { describe, expect, it } from 'vitest';
import { asOf, currentPeriodStart, parsePeriod, periodEnd, renewsAt } from '../src/customerAgent/budgetPeriod.ts';
import { purchaseInCustomerCurrency, sessionSummary, spentInCustomerCurrency } from '../src/customerAgent/figures.ts';
import { parseRate, settleDeposit } from '../src/exchangeTable.ts';
import { formatAmount, parseAmount } from '../src/money.ts';
import type { SiteRecord } from '../src/walletStore.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 31, 10, 0, 0);

describe('budget periods (renewed lazily on the wallet clock)', () => {
  it('a day and a week are fixed lengths; a month is the same day next month, clamped to its last day', () => {
    expect(periodEnd('day', T0)).toBe(T0 + DAY);
    expect(periodEnd('week', T0)).toBe(T0 + 7 * DAY);
    expect(new Date(periodEnd('month', T0)).toISOString()).toBe('2026-02-28T10:00:00.000Z');
    expect(new Date(periodEnd('month', Date.UTC(2026, 11, 15))).toISOString()).toBe('2027-01-15T00:00:00.000Z');
  });

  it('the current period is found however long the wallet slept', () => {
    expect(currentPeriodStart('week', T0, T0 + 7 * DAY - 1)).toBe(T0);
    expect(currentPeriodStart('week', T0, T0 + 7 * DAY)).toBe(T0 + 7 * DAY);
    expect(currentPeriodStart('week', T0, T0 + 23 * DAY)).toBe(T0 + 21 * DAY);
    expect(new Date(currentPeriodStart('month', T0, Date.UTC(2026, 3, 1))).toISOString()).toBe('2026-03-28T10:00:00.000Z');
  });

  const site: SiteRecord = {
    origin: 'https://news.example',
    approved: true,
    budget: 'SEK:5.00',
    spent: 'SEK:4.76',
    autoPayLimit: 'SEK:1.00',
    blocked: false,
    period: 'week',
    periodStart: T0,
    createdAt: T0,
    updatedAt: T0,
  };

  it('spent goes back to zero when the period ends, and only then; a budget for all time never renews', () => {
    expect(asOf(site, T0 + 6 * DAY)).toBe(site);
    const renewed = asOf(site, T0 + 8 * DAY);
    expect(renewed).toMatchObject({ spent: 'SEK:0.00', periodStart: T0 + 7 * DAY, budget: 'SEK:5.00' });
    expect(renewsAt(renewed, T0 + 8 * DAY)).toBe(T0 + 14 * DAY);
    const { period: _p, periodStart: _s, ...forever } = site;
    expect(asOf(forever, T0 + 100 * DAY)).toBe(forever);
    expect(renewsAt(forever, T0)).toBeUndefined();
  });

  it('a period the popup sends is checked', () => {
    expect(parsePeriod('week')).toBe('week');
    expect(parsePeriod('none')).toBe('none');
    expect(() => parsePeriod('fortnight')).toThrow(expect.objectContaining({ name: 'MALFORMED' }));
  });
});

describe('figures that add up: receipts, spent and returned by the bank’s rule', () => {
  // Svea Bank's demo rate: 0.0874 EUR per SEK; a deposit of SEK 20.00 (EUR 1.74 to the merchant).
  const deposit = 'SEK:20.00';
  const rate = '0.0874';

  it('each purchase is the step the withdrawal takes; a session’s receipts add up to it exactly', () => {
    const prices = ['EUR:0.03', 'EUR:0.03', 'EUR:0.05', 'EUR:0.01', 'EUR:0.03', 'EUR:0.07', 'EUR:0.03'];
    let cum = 0n;
    const purchases = prices.map((price, i) => {
      cum += parseAmount(price).value;
      return { n: i + 1, productId: `p${i}`, title: `P${i}`, price, cumulative: formatAmount({ currency: 'EUR', value: cum }) };
    });
    const cumulative = formatAmount({ currency: 'EUR', value: cum });
    const summary = sessionSummary({ transactionId: 't', merchantName: 'The Daily Obol', depositCustomer: deposit, rate, cumulative }, purchases);
    const bank = settleDeposit(parseAmount(deposit), parseAmount(cumulative), parseRate(rate));
    expect(summary.spent).toBe(formatAmount(bank.chargedCustomer));
    expect(summary.returned).toBe(formatAmount(bank.refundCustomer));
    const receipts = summary.receipts.reduce((s, r) => s + parseAmount(r.priceCustomer).value, 0n);
    expect(receipts).toBe(bank.chargedCustomer.value);
    // Converting each price on its own would not add up: 0.03 EUR is 0.343… SEK, shown 0.34 each.
    const oneByOne = prices.reduce((s, p) => s + BigInt(Math.round(Number(parseAmount(p).value) / 0.0874)), 0n);
    expect(oneByOne).not.toBe(bank.chargedCustomer.value);
    // A receipt is never more than a minor unit from its price converted alone.
    for (const r of summary.receipts) {
      const alone = Number(parseAmount(r.price).value) / 0.0874;
      expect(Math.abs(Number(parseAmount(r.priceCustomer).value) - alone)).toBeLessThanOrEqual(1);
    }
  });

  it('spent never exceeds the deposit; spent and returned make up the deposit', () => {
    expect(formatAmount(spentInCustomerCurrency(deposit, rate, 'EUR:1.74'))).toBe('SEK:19.91');
    expect(formatAmount(purchaseInCustomerCurrency(deposit, rate, 'EUR:0.03', 'EUR:0.03'))).toBe('SEK:0.34');
    const empty = sessionSummary({ transactionId: 't', merchantName: 'M', depositCustomer: deposit, rate, cumulative: 'EUR:0.00' }, []);
    expect(empty).toMatchObject({ spent: 'SEK:0.00', returned: 'SEK:20.00', receipts: [] });
  });
});
