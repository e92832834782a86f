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
