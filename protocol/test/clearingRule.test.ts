import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideClearing } from '../src/clearingRule.ts';
import { type Amount, parseAmount } from '../src/money.ts';

const eur = (v: bigint): Amount => ({ currency: 'EUR', value: v });
const deposit = parseAmount('EUR:1.00');

describe('clearing at the acquirer (FIG 3 step 10)', () => {
  it('records that agree are paid as agreed', () => {
    const rec = { total: eur(9n), count: 3, purchasesHash: 'h' };
    expect(decideClearing({ deposit, wallet: rec, merchant: { ...rec, provenCumulative: eur(9n) }, deadlinePassed: false })).toEqual({
      outcome: 'agreed',
      charged: eur(9n),
      unused: eur(91n),
      count: 3,
      flagged: false,
    });
  });

  it('a merchant that claims more than the customer signed gets the proven amount, flagged', () => {
    const d = decideClearing({
      deposit,
      wallet: { total: eur(6n), count: 2, purchasesHash: 'a' },
      merchant: { total: eur(30n), count: 4, purchasesHash: 'b', provenCumulative: eur(9n), provenCount: 3 },
      deadlinePassed: false,
    });
    expect(d).toMatchObject({ outcome: 'proven', charged: eur(9n), flagged: true, count: 3 });
  });

  it('waits for the missing record until the deadline', () => {
    expect(decideClearing({ deposit, merchant: { total: eur(9n), count: 3, purchasesHash: 'h' }, deadlinePassed: false })).toBeUndefined();
    expect(decideClearing({ deposit, wallet: { total: eur(9n), count: 3, purchasesHash: 'h' }, deadlinePassed: false })).toBeUndefined();
  });

  it('a wallet that never reports is settled on the merchant proof; a silent merchant gives the deposit back', () => {
    expect(
      decideClearing({ deposit, merchant: { total: eur(12n), count: 4, purchasesHash: 'h', provenCumulative: eur(9n), provenCount: 3 }, deadlinePassed: true }),
    ).toMatchObject({ outcome: 'wallet-deadline', charged: eur(9n), count: 3 });
    expect(decideClearing({ deposit, wallet: { total: eur(9n), count: 3, purchasesHash: 'h' }, deadlinePassed: true })).toMatchObject({
      outcome: 'merchant-deadline',
      charged: eur(0n),
      unused: deposit,
    });
  });

  it('property: never more than the customer signed or the deposit, and charged + unused = deposit', () => {
    const v = fc.bigInt({ min: 0n, max: 300n });
    fc.assert(
      fc.property(v, v, v, fc.boolean(), fc.boolean(), fc.boolean(), (w, m, p, hasW, hasM, late) => {
        const d = decideClearing({
          deposit: eur(200n),
          wallet: hasW ? { total: eur(w), count: 1, purchasesHash: 'x' } : undefined,
          merchant: hasM ? { total: eur(m), count: 1, purchasesHash: 'y', provenCumulative: eur(p) } : undefined,
          deadlinePassed: late,
        });
        if (!d) return;
        const signed = (hasW ? w : 0n) > (hasM ? p : 0n) ? (hasW ? w : 0n) : hasM ? p : 0n;
        expect(d.charged.value <= signed).toBe(true);
        expect(d.charged.value <= 200n && d.charged.value >= 0n).toBe(true);
        expect(d.charged.value + d.unused.value).toBe(200n);
        if (hasM) expect(d.charged.value <= m).toBe(true);
      }),
    );
  });
});

describe('one rule for the purchase list hash on both sides', () => {
  it('a session with nothing bought: wallet (with its own salt) and merchant (without it) hash the empty list alike, and clear as agreed', async () => {
    const { recordPurchasesHash } = await import('../src/purchaseList.ts');
    const walletSide = await recordPurchasesHash('a-wallet-salt-the-merchant-never-saw', []);
    const merchantSide = await recordPurchasesHash(null, []);
    expect(walletSide).toBe(merchantSide);
    const none = { total: eur(0n), count: 0 };
    expect(decideClearing({ deposit, wallet: { ...none, purchasesHash: walletSide }, merchant: { ...none, purchasesHash: merchantSide }, deadlinePassed: false })).toMatchObject({
      outcome: 'agreed',
      charged: eur(0n),
      flagged: false,
    });
  });

  it('records whose lists differ do not agree, even with nothing counted by the merchant', () => {
    const d = decideClearing({ deposit, wallet: { total: eur(0n), count: 0, purchasesHash: 'a' }, merchant: { total: eur(0n), count: 0, purchasesHash: 'b' }, deadlinePassed: false });
    expect(d).toMatchObject({ outcome: 'proven', charged: eur(0n), flagged: true });
  });
});

describe('refund lines before clearing (issue 14)', () => {
  const salt = 'c2FsdC1mb3ItcmVmdW5kLWxpbmUtdGVzdHMtMDEyMzQ1';
  const lines = [
    { n: 1, productId: 'a', price: 'EUR:0.03' },
    { n: 2, productId: 'b', price: 'EUR:0.05' },
  ];
  it('no refund line gives the old hash; lines change it, whatever order they were learnt in', async () => {
    const { purchasesHash, recordPurchasesHash } = await import('../src/purchaseList.ts');
    expect(await recordPurchasesHash(salt, lines, undefined, [])).toBe(await purchasesHash(salt, lines));
    const r1 = { refundId: 'refund-one-0000000000', n: 1, amount: 'EUR:0.01' };
    const r2 = { refundId: 'refund-two-0000000000', n: 2, amount: 'EUR:0.05' };
    const withLines = await recordPurchasesHash(salt, lines, undefined, [r1, r2]);
    expect(withLines).not.toBe(await purchasesHash(salt, lines));
    expect(await recordPurchasesHash(salt, lines, undefined, [r2, r1])).toBe(withLines);
    expect(await recordPurchasesHash(salt, lines, undefined, [r1])).not.toBe(withLines);
  });
  it('the record total is the cumulative less the lines; a line never raises it, never passes its purchase, never counts twice', async () => {
    const { recordTotalText } = await import('../src/purchaseList.ts');
    expect(recordTotalText('EUR:0.08', lines, [])).toBe('EUR:0.08');
    expect(recordTotalText('EUR:0.08', lines, [{ refundId: 'x1', n: 2, amount: 'EUR:0.05' }, { refundId: 'x2', n: 1, amount: 'EUR:0.01' }])).toBe('EUR:0.02');
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as Error).name;
      }
      return 'accepted';
    };
    expect(refused(() => recordTotalText('EUR:0.08', lines, [{ refundId: 'x1', n: 1, amount: 'EUR:0.04' }]))).toBe('CONFLICT');
    expect(refused(() => recordTotalText('EUR:0.08', lines, [{ refundId: 'x1', n: 1, amount: 'EUR:0.02' }, { refundId: 'x2', n: 1, amount: 'EUR:0.02' }]))).toBe('CONFLICT');
    expect(refused(() => recordTotalText('EUR:0.08', lines, [{ refundId: 'x1', n: 1, amount: 'EUR:0.01' }, { refundId: 'x1', n: 1, amount: 'EUR:0.01' }]))).toBe('CONFLICT');
    expect(refused(() => recordTotalText('EUR:0.08', lines, [{ refundId: 'x1', n: 3, amount: 'EUR:0.01' }]))).toBe('CONFLICT');
    expect(refused(() => recordTotalText('EUR:0.08', lines, [{ refundId: 'x1', n: 1, amount: 'EUR:-0.01' }]))).toBe('INVALID_AMOUNT');
    expect(refused(() => recordTotalText('EUR:0.08', lines, [{ refundId: 'x1', n: 1, amount: 'SEK:0.01' }]))).toBe('CURRENCY_MISMATCH');
  });
  it('a merchant total lowered by a line the wallet never learnt clears at the lower total, flagged', async () => {
    const { decideClearing } = await import('../src/clearingRule.ts');
    const d = decideClearing({
      deposit: parseAmount('EUR:0.17'),
      wallet: { total: parseAmount('EUR:0.06'), count: 2, purchasesHash: 'h-without-lines' },
      merchant: { total: parseAmount('EUR:0.03'), count: 2, purchasesHash: 'h-with-lines', provenCumulative: parseAmount('EUR:0.06'), provenCount: 2 },
      deadlinePassed: false,
    });
    expect(d).toMatchObject({ outcome: 'proven', flagged: true, charged: parseAmount('EUR:0.03'), unused: parseAmount('EUR:0.14') });
  });
});
