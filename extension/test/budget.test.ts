import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { approveAndReserve, commit, heldAt, release, tryReserve } from '@obol/protocol/customerAgent/budget';
import { type IdbWalletDatabase as WalletDb, openWalletDb } from '../src/background/db.ts';
import { getRecord, putRecord } from './support.ts';

let n = 0;
async function freshDb(): Promise<WalletDb> {
  return openWalletDb(`budget-test-${++n}`);
}

async function payment(db: WalletDb, key: string, origin = 'https://news.example') {
  await putRecord(db, 'payments', { key, origin, merchantUrl: `${origin}/obol`, productId: 'a', price: 'EUR:0.03', state: 'new', createdAt: 0, updatedAt: 0 });
}

const result = { transactionId: 'op-sek.1.1', n: 1, productId: 'a', price: 'EUR:0.03', content: '', contentType: 'text/plain', contentHash: 'x', receiptId: 'r' };

describe('budget reserve and commit (one IndexedDB transaction each)', () => {
  it('asks at an unknown site, then lets purchases through within the budget and under the auto-pay limit', async () => {
    const db = await freshDb();
    await payment(db, 'p1');
    expect(await tryReserve(db, { paymentKey: 'p1', origin: 'https://news.example', amount: 'SEK:0.34', now: 1, gesture: true })).toMatchObject({ ok: false, reason: 'first' });
    await approveAndReserve(db, { paymentKey: 'p1', origin: 'https://news.example', amount: 'SEK:0.34', budget: 'SEK:1.00', autoPayLimit: 'SEK:0.50', now: 2 });
    expect((await getRecord(db, 'payments', 'p1'))?.state).toBe('authorized');
    expect(await heldAt(db, 'https://news.example', 'SEK')).toBe('SEK:0.34');
    await commit(db, { paymentKey: 'p1', result, receiptKey: 'op-sek.1.1#1', now: 3 });
    await commit(db, { paymentKey: 'p1', result, receiptKey: 'op-sek.1.1#1', now: 4 }); // idempotent
    expect((await getRecord(db, 'sites', 'https://news.example'))?.spent).toBe('SEK:0.34');
    expect(await heldAt(db, 'https://news.example', 'SEK')).toBe('SEK:0.00');

    await payment(db, 'p2');
    expect(await tryReserve(db, { paymentKey: 'p2', origin: 'https://news.example', amount: 'SEK:0.60', now: 5, gesture: true })).toMatchObject({ ok: false, reason: 'over-auto-pay' });
    expect(await tryReserve(db, { paymentKey: 'p2', origin: 'https://news.example', amount: 'SEK:0.34', now: 5, gesture: true })).toEqual({ ok: true });
    await release(db, { paymentKey: 'p2', error: { code: 3000, name: 'INSUFFICIENT_FUNDS', message: 'no' }, now: 6 });
    expect((await getRecord(db, 'payments', 'p2'))?.state).toBe('failed');
    expect((await getRecord(db, 'sites', 'https://news.example'))?.spent).toBe('SEK:0.34');

    await payment(db, 'p3');
    await payment(db, 'p4');
    expect(await tryReserve(db, { paymentKey: 'p3', origin: 'https://news.example', amount: 'SEK:0.34', now: 7, gesture: true })).toEqual({ ok: true });
    expect(await tryReserve(db, { paymentKey: 'p4', origin: 'https://news.example', amount: 'SEK:0.34', now: 7, gesture: true })).toMatchObject({ ok: false, reason: 'over-budget', reserved: 'SEK:0.34' });
  });

  it('never lets concurrent payments overspend: 20 at once against room for 5', async () => {
    const db = await freshDb();
    await payment(db, 'first');
    await approveAndReserve(db, { paymentKey: 'first', origin: 'https://news.example', amount: 'SEK:0.20', budget: 'SEK:1.20', autoPayLimit: 'SEK:0.50', now: 1 });
    await commit(db, { paymentKey: 'first', result, receiptKey: 'op-sek.1.1#1', now: 1 }); // the approval stands once its purchase succeeded
    const keys = Array.from({ length: 20 }, (_, i) => `c${i}`);
    for (const k of keys) await payment(db, k);
    const outcomes = await Promise.all(keys.map((k) => tryReserve(db, { paymentKey: k, origin: 'https://news.example', amount: 'SEK:0.20', now: 2, gesture: true })));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(5);
    expect(await heldAt(db, 'https://news.example', 'SEK')).toBe('SEK:1.00');
    // Commits and reserves interleaved: still never beyond the budget.
    const granted = keys.filter((_, i) => outcomes[i]?.ok);
    const more = ['m1', 'm2', 'm3'];
    for (const k of more) await payment(db, k);
    const mixed = await Promise.all([
      ...granted.map((k, i) => commit(db, { paymentKey: k, result, receiptKey: `op-sek.1.1#${i + 2}`, now: 3 }).then(() => 'committed' as const)),
      ...more.map((k) => tryReserve(db, { paymentKey: k, origin: 'https://news.example', amount: 'SEK:0.20', now: 3, gesture: true })),
    ]);
    expect(mixed.filter((m) => typeof m === 'object' && m.ok)).toHaveLength(0);
    const site = await getRecord(db, 'sites', 'https://news.example');
    expect(site?.spent).toBe('SEK:1.20');
  });

  it('a blocked site is refused before anything else', async () => {
    const db = await freshDb();
    await payment(db, 'p');
    await approveAndReserve(db, { paymentKey: 'p', origin: 'https://news.example', amount: 'SEK:0.10', budget: 'SEK:5.00', autoPayLimit: 'SEK:1.00', now: 1 });
    const site = await getRecord(db, 'sites', 'https://news.example');
    await putRecord(db, 'sites', { ...site!, blocked: true });
    await payment(db, 'q');
    expect(await tryReserve(db, { paymentKey: 'q', origin: 'https://news.example', amount: 'SEK:0.10', now: 2, gesture: true })).toMatchObject({ ok: false, reason: 'blocked' });
  });

  it('an approval never leaves the budget below what is spent and held plus the purchase', async () => {
    const db = await freshDb();
    await payment(db, 'p');
    const site = await approveAndReserve(db, { paymentKey: 'p', origin: 'https://news.example', amount: 'SEK:2.00', budget: 'SEK:1.00', autoPayLimit: 'SEK:1.00', now: 1 });
    expect(site.budget).toBe('SEK:2.00');
  });
});
