import { describe, expect, it } from 'vitest';
import { MemoryWalletDatabase, compareKeys, readStore, writeStore } from '../src/walletDatabase.ts';
import type { PaymentRecord } from '../src/walletStore.ts';

const payment = (key: string, over: Partial<PaymentRecord> = {}): PaymentRecord => ({
  key,
  origin: 'https://news.example',
  merchantUrl: 'https://news.example/obol',
  productId: 'a',
  price: 'EUR:0.03',
  state: 'new',
  createdAt: 0,
  updatedAt: 0,
  ...over,
});

describe('the wallet database in memory (what the CLI and the tests run the core on)', () => {
  it('a transaction whose body throws leaves nothing behind, in any of the stores it named', async () => {
    const db = new MemoryWalletDatabase();
    await writeStore(db, 'payments', (s) => s.put(payment('p1')));
    const failed = db.transaction(['payments', 'reservations'], 'readwrite', async (t) => {
      await t.store('payments').put(payment('p1', { state: 'authorized' }));
      await t.store('reservations').put({ paymentKey: 'p1', origin: 'https://news.example', amount: 'SEK:0.34', createdAt: 1 });
      throw new Error('stopped half-way');
    });
    await expect(failed).rejects.toThrow('stopped half-way');
    expect(await readStore(db, 'payments', (s) => s.get('p1'))).toMatchObject({ state: 'new' });
    expect(await readStore(db, 'reservations', (s) => s.getAll())).toEqual([]);
  });

  it('read-write transactions run one after the other: two check-and-hold steps never both pass', async () => {
    const db = new MemoryWalletDatabase();
    const takeIfFree = (who: string) =>
      db.transaction(['reservations'], 'readwrite', async (t) => {
        const held = await t.store('reservations').index('byOrigin').getAll('https://news.example');
        if (held.length > 0) return false;
        await Promise.resolve(); // an await between the check and the hold
        await t.store('reservations').put({ paymentKey: who, origin: 'https://news.example', amount: 'SEK:0.34', createdAt: 1 });
        return true;
      });
    expect(await Promise.all([takeIfFree('a'), takeIfFree('b')])).toEqual([true, false]);
  });

  it('keeps copies, not the caller’s objects; indexes skip records without the key and keep unique ones unique', async () => {
    const db = new MemoryWalletDatabase();
    const p = payment('p1', { receiptKey: 'tx#1' });
    await writeStore(db, 'payments', (s) => s.put(p));
    p.state = 'done';
    expect(await readStore(db, 'payments', (s) => s.get('p1'))).toMatchObject({ state: 'new' });
    await writeStore(db, 'payments', (s) => s.put(payment('p2')));
    expect(await readStore(db, 'payments', (s) => s.index('byReceipt').getAll())).toHaveLength(1);
    expect(await readStore(db, 'payments', (s) => s.index('byReceipt').getKey('tx#1'))).toBe('p1');
    await expect(writeStore(db, 'payments', (s) => s.put(payment('p3', { receiptKey: 'tx#1' })))).rejects.toMatchObject({ name: 'CONFLICT' });
    await expect(readStore(db, 'payments', (s) => s.put(payment('p4')))).rejects.toMatchObject({ name: 'INTERNAL' });
  });

  it('numbers auto-increment records and orders keys as IndexedDB does', async () => {
    const db = new MemoryWalletDatabase();
    await writeStore(db, 'activity', async (s) => {
      await s.add({ time: 5, kind: 'paid', text: 'b' });
      await s.add({ time: 3, kind: 'paid', text: 'a' });
    });
    expect((await readStore(db, 'activity', (s) => s.getAll())).map((a) => a.id)).toEqual([1, 2]);
    expect((await readStore(db, 'activity', (s) => s.index('byTime').getAll())).map((a) => a.text)).toEqual(['a', 'b']);
    expect([['b', 2], 'z', 10, ['b', 1], ['a', 9], 2].sort(compareKeys)).toEqual([2, 10, 'z', ['a', 9], ['b', 1], ['b', 2]]);
  });
});
