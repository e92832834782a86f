import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { approveAndReserve, commit, release, tryReserve } from '@obol/protocol/customerAgent/budget';
import { DECLINE_COOL_DOWN_MS, PROMPTS_PER_MINUTE, checkNotDeclined, declinedSites, liftDecline, recordDecline, siteApproved, takeWindowSlot } from '@obol/protocol/customerAgent/consent';
import { type IdbWalletDatabase as WalletDb, openWalletDb } from '../src/background/db.ts';
import { getRecord, putRecord } from './support.ts';
import { GestureLedger } from '../src/content/activation.ts';
import { hasBidiControls, neutralizeBidi } from '@obol/protocol/bidi';

let n = 0;
const freshDb = (): Promise<WalletDb> => openWalletDb(`consent-test-${++n}`);
const SHOP = 'https://news.example';
const result = { transactionId: 'op-sek.1.1', n: 1, productId: 'a', price: 'EUR:0.03', content: '', contentType: 'text/plain', contentHash: 'x', receiptId: 'r' };

async function payment(db: WalletDb, key: string) {
  await putRecord(db, 'payments', { key, origin: SHOP, merchantUrl: `${SHOP}/obol`, productId: 'a', price: 'EUR:0.03', state: 'new', createdAt: 0, updatedAt: 0 });
}

describe('a "no" holds across tabs and reloads, until lifted or cooled down', () => {
  it('refuses windows and requests of a declined site, by the injected clock', async () => {
    const db = await freshDb();
    await takeWindowSlot(db, SHOP, 1_000);
    await recordDecline(db, SHOP, 1_000);
    await expect(takeWindowSlot(db, SHOP, 2_000)).rejects.toMatchObject({ name: 'SITE_BLOCKED', code: 4304 });
    await expect(checkNotDeclined(db, SHOP, 2_000)).rejects.toMatchObject({ name: 'SITE_BLOCKED' });
    await checkNotDeclined(db, 'https://other.example', 2_000); // another site is not touched
    expect(await declinedSites(db, 2_000)).toEqual([{ origin: SHOP, declinedAt: 1_000, until: 1_000 + DECLINE_COOL_DOWN_MS }]);
    // The cool-down passes (time moved, not slept).
    const later = 1_000 + DECLINE_COOL_DOWN_MS + 1;
    await checkNotDeclined(db, SHOP, later);
    expect(await declinedSites(db, later)).toEqual([]);
    await takeWindowSlot(db, SHOP, later);
  });

  it('"allow again" lifts it at once', async () => {
    const db = await freshDb();
    await recordDecline(db, SHOP, 5);
    await liftDecline(db, SHOP);
    await checkNotDeclined(db, SHOP, 6);
    expect(await declinedSites(db, 6)).toEqual([]);
  });

  it(`bounds windows per site to ${PROMPTS_PER_MINUTE} a minute, even when asked at once`, async () => {
    const db = await freshDb();
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => takeWindowSlot(db, SHOP, 10_000)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(PROMPTS_PER_MINUTE);
    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason.name)).toEqual(['TOO_MANY_PROMPTS', 'TOO_MANY_PROMPTS', 'TOO_MANY_PROMPTS']);
    await takeWindowSlot(db, 'https://other.example', 10_000); // per site
    await expect(takeWindowSlot(db, SHOP, 69_999)).rejects.toMatchObject({ name: 'TOO_MANY_PROMPTS', code: 4307 });
    await takeWindowSlot(db, SHOP, 70_001); // a minute later
  });
});

describe('an approval counts only once its purchase succeeded', () => {
  it('a failed confirmed purchase leaves the site unapproved, its budget not granted', async () => {
    const db = await freshDb();
    await payment(db, 'bait');
    await approveAndReserve(db, { paymentKey: 'bait', origin: SHOP, amount: 'SEK:0.11', budget: 'SEK:20.00', autoPayLimit: 'SEK:1.00', now: 1 });
    expect(await siteApproved(db, SHOP)).toBe(false); // pending on its purchase
    await payment(db, 'next');
    expect(await tryReserve(db, { paymentKey: 'next', origin: SHOP, amount: 'SEK:0.34', now: 2, gesture: true })).toMatchObject({ ok: false, reason: 'first' });
    await release(db, { paymentKey: 'bait', error: { code: 5008, name: 'UNKNOWN_PRODUCT', message: 'no such product' }, now: 3 });
    expect(await siteApproved(db, SHOP)).toBe(false);
    expect(await getRecord(db, 'sites', SHOP)).toMatchObject({ approved: false });
    expect(await tryReserve(db, { paymentKey: 'next', origin: SHOP, amount: 'SEK:0.34', now: 4, gesture: true })).toMatchObject({ ok: false, reason: 'first' });
  });

  it('a raised budget whose purchase failed goes back to the budget before', async () => {
    const db = await freshDb();
    await payment(db, 'p1');
    await approveAndReserve(db, { paymentKey: 'p1', origin: SHOP, amount: 'SEK:0.34', budget: 'SEK:0.50', autoPayLimit: 'SEK:0.34', now: 1 });
    await commit(db, { paymentKey: 'p1', result, receiptKey: 'op-sek.1.1#1', now: 2 });
    expect(await siteApproved(db, SHOP)).toBe(true);
    await payment(db, 'p2');
    await approveAndReserve(db, { paymentKey: 'p2', origin: SHOP, amount: 'SEK:0.34', budget: 'SEK:20.00', autoPayLimit: 'SEK:5.00', now: 3 });
    expect(await siteApproved(db, SHOP)).toBe(true); // still, under the rules before
    await release(db, { paymentKey: 'p2', error: { code: 6000, name: 'UNAVAILABLE', message: 'x' }, now: 4 });
    expect(await getRecord(db, 'sites', SHOP)).toMatchObject({ approved: true, budget: 'SEK:0.50', autoPayLimit: 'SEK:0.34', spent: 'SEK:0.34' });
    expect((await getRecord(db, 'sites', SHOP))?.pending).toBeUndefined();
  });

  it('without a fresh gesture nothing passes without a window, even within the budget', async () => {
    const db = await freshDb();
    await payment(db, 'p1');
    await approveAndReserve(db, { paymentKey: 'p1', origin: SHOP, amount: 'SEK:0.34', budget: 'SEK:5.00', autoPayLimit: 'SEK:1.00', now: 1 });
    await commit(db, { paymentKey: 'p1', result, receiptKey: 'op-sek.1.1#1', now: 2 });
    await payment(db, 'p2');
    expect(await tryReserve(db, { paymentKey: 'p2', origin: SHOP, amount: 'SEK:0.34', now: 3, gesture: false })).toMatchObject({ ok: false, reason: 'no-gesture' });
    expect(await tryReserve(db, { paymentKey: 'p2', origin: SHOP, amount: 'SEK:0.34', now: 3, gesture: true })).toEqual({ ok: true });
  });
});

describe('the database upgrade', () => {
  it('adds the consent store to a version-1 wallet and keeps its sites', async () => {
    const name = `consent-upgrade-${++n}`;
    const v1 = await openDB(name, 1, {
      upgrade(db) {
        db.createObjectStore('sites', { keyPath: 'origin' });
      },
    });
    await v1.put('sites', { origin: SHOP, approved: true, budget: 'SEK:1.00', spent: 'SEK:0.00', autoPayLimit: 'SEK:0.34', blocked: false, createdAt: 0, updatedAt: 0 });
    v1.close();
    const db = await openWalletDb(name);
    expect(db.idb.objectStoreNames.contains('consent')).toBe(true);
    expect(await siteApproved(db, SHOP)).toBe(true);
    await recordDecline(db, SHOP, 1);
    expect(await declinedSites(db, 2)).toHaveLength(1);
  });
});

describe('one purchase per gesture (the content script’s ledger)', () => {
  it('takes each trusted gesture once, never a synthetic one, and only while the frame is active', () => {
    let active = false;
    const ledger = new GestureLedger(() => active);
    ledger.observe({ isTrusted: false }); // dispatched by a page script
    active = true; // (activation from elsewhere, without a counted gesture)
    expect(ledger.take()).toBe(false);
    ledger.observe({ isTrusted: true });
    ledger.observe({ isTrusted: true }); // pointerdown and mousedown of one click
    expect(ledger.take()).toBe(true);
    expect(ledger.take()).toBe(false); // the same click again
    ledger.observe({ isTrusted: true, repeat: true }); // a key held down: still the same press
    expect(ledger.take()).toBe(false);
    ledger.observe({ isTrusted: true });
    active = false; // the activation expired
    expect(ledger.take()).toBe(false);
  });
});

describe('bidi controls are shown, not obeyed', () => {
  it('neutralises overrides, isolates and marks', () => {
    expect(neutralizeBidi('\u202Eeerf si sihT')).toBe('[U+202E]eerf si sihT');
    expect(neutralizeBidi('a\u2066b\u2069c\u200E\u200F\u061C')).toBe('a[U+2066]b[U+2069]c[U+200E][U+200F][U+061C]');
    expect(hasBidiControls(neutralizeBidi('\u202A\u202B\u202C\u202D\u202E'))).toBe(false);
    expect(neutralizeBidi('Två banker, ett klick')).toBe('Två banker, ett klick');
  });
});
