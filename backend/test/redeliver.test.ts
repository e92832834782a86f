import { SESSION_READ_WINDOW_MS } from '@obol/protocol/api';
import type { BridgeParams } from '@obol/protocol/bridgeWire';
import type { WalletPlatform } from '@obol/protocol/customerAgent/platform';
import { Wallet } from '@obol/protocol/customerAgent/wallet';
import type { PageCaller } from '@obol/protocol/customerAgent/walletApi';
import type { Http } from '@obol/protocol/http';
import { generateSigningKeyPair, keyHandle, keySigner } from '@obol/protocol/keys';
import type { MessageBody } from '@obol/protocol/messages';
import { certToBase64 } from '@obol/protocol/pki';
import { signMessage } from '@obol/protocol/signed';
import { MemoryWalletDatabase } from '@obol/protocol/walletDatabase';
import type { TransactionRecord } from '@obol/protocol/walletStore';
import { randomId } from '@obol/protocol/webcrypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undiciHttp } from '../src/http/client.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * Issue 14, "never pay twice by accident": what a shopper bought at a site shows as bought and
 * opens again without a charge — after a reload, in a new tab, after the wallet's store is opened
 * anew (a stopped service worker), after the session ended and was cleared. The wallet proves the
 * purchase to the merchant with the transaction's session key; the merchant checks it against its
 * own records and delivers again. Forged, foreign, stale and replayed proofs get catalogue errors.
 * Real operators and a real shop over HTTP (PGlite); the wallet core on its memory database.
 */

const INFO = { uuid: 'obol-test-wallet', name: 'Obol test wallet', icon: 'data:,', rdns: 'org.obol.test' };

let t: TwoOperators;
/** Every POST the wallets made to the merchant's redelivery route. */
const redeliveries: unknown[] = [];
const countingHttp: Http = {
  get: (url, headers) => undiciHttp.get(url, headers),
  post: (url, body, headers) => {
    if (url.endsWith('/redeliver')) redeliveries.push(body);
    return undiciHttp.post(url, body, headers);
  },
};

/** A platform whose shopper answers every window with yes (the budget the window proposes). */
function yesPlatform(wallet: () => Wallet | undefined): WalletPlatform {
  let nextWindow = 1;
  return {
    now: () => t.clock.now(),
    async showPrompt(id) {
      queueMicrotask(() => void wallet()?.decide({ id, accept: true }));
      return nextWindow++;
    },
    async windowExists() {
      return true;
    },
    async closeWindow() {},
    notifyChanged() {},
  };
}

function openWallet(db: MemoryWalletDatabase): Wallet {
  let w: Wallet | undefined;
  w = new Wallet({ db, platform: yesPlatform(() => w), http: countingHttp, info: INFO, trustedRoots: [certToBase64(t.world.root.cert)], resumeDelayMs: 0 });
  return w;
}

async function shopper(): Promise<{ db: MemoryWalletDatabase; wallet: Wallet }> {
  const db = new MemoryWalletDatabase();
  const wallet = openWallet(db);
  await wallet.register(t.sek.url);
  await wallet.topUp('100');
  return { db, wallet };
}

const page = (): PageCaller => ({ origin: t.shop.url, documentId: randomId(8), gesture: true });
const payParams = (productId: string, price = 'EUR:0.03'): BridgeParams<'obol_pay'> => ({ merchant: t.shop.moduleUrl, productId, price });
let keys = 0;
const requestKey = () => `rebuy${++keys}`.padEnd(16, '0');
const text = (b64: string) => Buffer.from(b64, 'base64url').toString('utf8');

/** The session (trading transaction) of the wallet's receipt for `productId`. */
async function transactionOf(wallet: Wallet, productId: string): Promise<TransactionRecord> {
  const receipt = (await wallet.store.listReceipts()).find((r) => r.productId === productId);
  const tx = receipt && (await wallet.store.getTransaction(receipt.transactionId));
  if (!receipt || !tx) throw new Error(`no purchase of ${productId}`);
  return tx;
}

/** A redelivery request as a wallet makes it, signed with `tx`'s session key (or `signer`). */
async function redeliverBody(tx: TransactionRecord, fields: Partial<MessageBody<'wallet.redeliver'>>, signer = keySigner(tx.sessionKid, tx.sessionKeys.privateKey)) {
  return {
    redeliver: await signMessage('wallet.redeliver', { msgId: randomId(16), transactionId: tx.handle!, n: 1, acceptId: 'x'.repeat(22), time: t.clock.now(), ...fields }, signer),
  };
}

async function postRedeliver(body: unknown): Promise<{ status: number; json: { error?: { code: number; name: string; message: string } } & Record<string, unknown> }> {
  const res = await fetch(`${t.shop.moduleUrl}/redeliver`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as never };
}

beforeAll(async () => {
  t = await twoOperators('PGlite');
}, 180_000);

afterAll(async () => {
  await t?.close();
});

describe('bought once, opened again without a charge (issue 14)', () => {
  let a: { db: MemoryWalletDatabase; wallet: Wallet };
  let firstText: string;
  let acceptId: string;

  beforeAll(async () => {
    a = await shopper();
    const paid = await a.wallet.pay(page(), requestKey(), payParams('two-banks'));
    firstText = text(paid.content);
    acceptId = paid.receiptId;
    expect(firstText.length).toBeGreaterThan(50);
  });

  it('after a reload the site learns it was bought, and opening it is delivered again by the merchant: balance, deposit and receipts unchanged', async () => {
    const before = { balance: (await a.wallet.overview()).balance, receipts: (await a.wallet.store.listReceipts()).length };
    const tx = await transactionOf(a.wallet, 'two-banks');
    const merchantBefore = await t.shop.agent.session(tx.handle!);

    // A reload is a new page load (a new documentId, no gesture): it asks which of its products are bought.
    const reload: PageCaller = { origin: t.shop.url, documentId: randomId(8) };
    expect(await a.wallet.handleCoreApiRequest('purchased', { caller: reload, params: { merchant: t.shop.moduleUrl, productIds: ['two-banks', 'pseudonyms'] } })).toEqual({
      productIds: ['two-banks'],
    });
    const sent = redeliveries.length;
    const opened = await a.wallet.handleCoreApiRequest('open', { caller: reload, params: { merchant: t.shop.moduleUrl, productId: 'two-banks' } });
    expect(text(opened.content)).toBe(firstText);
    expect(opened).toMatchObject({ productId: 'two-banks', price: 'EUR:0.03', n: 1, receiptId: acceptId, transactionId: tx.handle });
    // It came from the merchant, on the wallet's proof: one signed request naming that accept.
    expect(redeliveries.length).toBe(sent + 1);
    expect(redeliveries.at(-1)).toMatchObject({ redeliver: { type: 'wallet.redeliver', body: { transactionId: tx.handle, n: 1, acceptId } } });

    // Nothing was charged: not at the bank, not in the merchant's session, not in the wallet.
    expect((await a.wallet.overview()).balance).toEqual(before.balance);
    expect(await t.shop.agent.session(tx.handle!)).toEqual(merchantBefore);
    expect((await a.wallet.store.listReceipts()).length).toBe(before.receipts);
    expect(await a.wallet.store.getTransaction(tx.transactionId!)).toMatchObject({ cumulative: 'EUR:0.03', nextN: 2 });
  });

  it('works again with the wallet store opened anew (a restarted service worker)', async () => {
    const reopened = openWallet(a.db);
    const caller: PageCaller = { origin: t.shop.url, documentId: randomId(8) };
    expect(await reopened.purchased(caller, { merchant: t.shop.moduleUrl, productIds: ['two-banks'] })).toEqual({ productIds: ['two-banks'] });
    const sent = redeliveries.length;
    expect(text((await reopened.open(caller, { merchant: t.shop.moduleUrl, productId: 'two-banks' })).content)).toBe(firstText);
    expect(redeliveries.length).toBe(sent + 1);
  });

  it('tells no other site, nor a site the shopper blocked, and opens nothing for them', async () => {
    const elsewhere: PageCaller = { origin: 'http://elsewhere.example' };
    expect(await a.wallet.purchased(elsewhere, { merchant: t.shop.moduleUrl, productIds: ['two-banks'] })).toEqual({ productIds: [] });
    await expect(a.wallet.open(elsewhere, { merchant: t.shop.moduleUrl, productId: 'two-banks' })).rejects.toMatchObject({ name: 'NO_ACCEPT' });
    // The same site naming another merchant module learns nothing of this one's sales either.
    expect(await a.wallet.purchased(page(), { merchant: `${t.shop.url}/other`, productIds: ['two-banks'] })).toEqual({ productIds: [] });
    // Blocked in the wallet: the site is no longer approved, so it learns nothing.
    await a.wallet.setSite({ origin: t.shop.url, blocked: true });
    expect(await a.wallet.purchased(page(), { merchant: t.shop.moduleUrl, productIds: ['two-banks'] })).toEqual({ productIds: [] });
    await expect(a.wallet.open(page(), { merchant: t.shop.moduleUrl, productId: 'two-banks' })).rejects.toMatchObject({ name: 'NO_ACCEPT' });
    await a.wallet.setSite({ origin: t.shop.url, blocked: false });
    // Something never bought here is not offered.
    await expect(a.wallet.open(page(), { merchant: t.shop.moduleUrl, productId: 'pseudonyms' })).rejects.toMatchObject({ name: 'NO_ACCEPT' });
  });

  it('a shopper who never bought here (the site unapproved for her) learns nothing', async () => {
    const b = await shopper();
    expect(await b.wallet.purchased(page(), { merchant: t.shop.moduleUrl, productIds: ['two-banks'] })).toEqual({ productIds: [] });
    await expect(b.wallet.open(page(), { merchant: t.shop.moduleUrl, productId: 'two-banks' })).rejects.toMatchObject({ name: 'NO_ACCEPT' });
  });

  it('after the session ended and was cleared it still opens, without a charge', async () => {
    const tx = await transactionOf(a.wallet, 'two-banks');
    await a.wallet.endAllSessions();
    await t.shop.agent.settled();
    const settled = await a.wallet.settlement(tx.transactionId!);
    expect(settled.state).toBe('cleared');
    // The merchant's session is closed and reported (it learns of the clearing only when its record
    // is answered with one, which depends on which side reported first).
    expect(['reported', 'cleared']).toContain((await t.shop.agent.session(tx.handle!)).state);
    const balance = (await a.wallet.overview()).balance;
    const sent = redeliveries.length;
    const opened = await a.wallet.open(page(), { merchant: t.shop.moduleUrl, productId: 'two-banks' });
    expect(text(opened.content)).toBe(firstText);
    expect(redeliveries.length).toBe(sent + 1);
    expect((await a.wallet.overview()).balance).toEqual(balance);
    expect(await t.shop.agent.session(tx.handle!)).toMatchObject({ spent: 'EUR:0.03', count: 1 });
  });

  it('when the merchant cannot be reached, it opens the copy its receipt keeps (and says so)', async () => {
    const tx = await transactionOf(a.wallet, 'two-banks');
    const receipt = (await a.wallet.store.listReceipts(tx.transactionId)).find((r) => r.productId === 'two-banks')!;
    // The merchant as if down: a URL where nothing listens.
    const down = { ...receipt, merchantUrl: 'http://127.0.0.1:9/obol' };
    await a.wallet.store.addReceipt(down);
    try {
      const opened = await a.wallet.agent.redeliver(receipt.receiptId);
      expect(opened.from).toBe('receipt');
      expect(new TextDecoder().decode(opened.content)).toBe(firstText);
    } finally {
      await a.wallet.store.addReceipt(receipt);
    }
    expect((await a.wallet.agent.redeliver(receipt.receiptId)).from).toBe('merchant');
  });
});

describe('the merchant delivers again only on a sound proof (catalogue errors, never 5xx)', () => {
  let a: { db: MemoryWalletDatabase; wallet: Wallet };
  let b: { db: MemoryWalletDatabase; wallet: Wallet };
  let txA: TransactionRecord;
  let txB: TransactionRecord;
  let acceptA: string;
  let acceptB: string;

  beforeAll(async () => {
    a = await shopper();
    b = await shopper();
    acceptA = (await a.wallet.pay(page(), requestKey(), payParams('fair-exchange'))).receiptId;
    acceptB = (await b.wallet.pay(page(), requestKey(), payParams('deposits'))).receiptId;
    txA = await transactionOf(a.wallet, 'fair-exchange');
    txB = await transactionOf(b.wallet, 'deposits');
  });

  it('delivers the accepted version and the key it signed for that accept, to the session key only', async () => {
    const ok = await postRedeliver(await redeliverBody(txA, { acceptId: acceptA }));
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ transactionId: txA.handle, n: 1, productId: 'fair-exchange', key: { type: 'merchant.key', body: { acceptId: acceptA, n: 1 } } });
    const receipt = (await a.wallet.store.listReceipts(txA.transactionId)).find((r) => r.n === 1)!;
    expect(ok.json.key).toEqual(receipt.key);
    expect(ok.json.ciphertext).toBe(receipt.ciphertext);
  });

  it('refuses a forgery, another shopper’s key and an unknown transaction alike: UNAUTHORIZED, the same words', async () => {
    const stranger = await keyHandle(await generateSigningKeyPair());
    const forged = await postRedeliver(await redeliverBody(txA, { acceptId: acceptA }, stranger.signer));
    // Shopper B, holding her own session key, asks for A's purchase in A's transaction.
    const foreign = await postRedeliver(await redeliverBody(txA, { acceptId: acceptA }, keySigner(txB.sessionKid, txB.sessionKeys.privateKey)));
    const unknown = await postRedeliver(await redeliverBody(txA, { transactionId: `${txA.handle!.slice(0, -4)}AAAA`, acceptId: acceptA }));
    // A signature that does not match its body (the body changed after signing).
    const tampered = await redeliverBody(txA, { acceptId: acceptA });
    tampered.redeliver.body.n = 2;
    const altered = await postRedeliver(tampered);
    for (const r of [forged, foreign, unknown, altered]) {
      expect(r.status).toBe(401);
      expect(r.json.error).toMatchObject({ code: 4100, name: 'UNAUTHORIZED' });
      expect(r.json.error?.message).toBe(forged.json.error?.message);
    }
  });

  it('another shopper’s accept named under her own session is no purchase of hers: NO_ACCEPT', async () => {
    const r = await postRedeliver(await redeliverBody(txB, { acceptId: acceptA }));
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ name: 'NO_ACCEPT' });
    // Nor is a purchase number the session never accepted.
    const later = await postRedeliver(await redeliverBody(txB, { n: 2, acceptId: acceptB }));
    expect(later.json.error).toMatchObject({ name: 'NO_ACCEPT' });
  });

  it('refuses a replay and a stale or future request', async () => {
    const body = await redeliverBody(txA, { acceptId: acceptA });
    expect((await postRedeliver(body)).status).toBe(200);
    const again = await postRedeliver(body);
    expect(again.status).toBe(401);
    expect(again.json.error?.message).toMatch(/already used/);
    for (const time of [t.clock.now() - SESSION_READ_WINDOW_MS - 1, t.clock.now() + SESSION_READ_WINDOW_MS + 1]) {
      const stale = await postRedeliver(await redeliverBody(txA, { acceptId: acceptA, time }));
      expect(stale.status).toBe(401);
      expect(stale.json.error?.message).toMatch(/not fresh/);
    }
  });

  it('malformed requests are MALFORMED (400)', async () => {
    for (const body of [{}, { redeliver: 'x' }, { redeliver: { v: 1, type: 'wallet.accept', kid: 'k', body: {}, sig: 'AA' } }, { redeliver: (await redeliverBody(txA, { acceptId: acceptA })).redeliver, extra: 1 }]) {
      const r = await postRedeliver(body);
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ name: 'MALFORMED' });
    }
  });

  it('no redelivery ever charged: the merchant holds exactly the two purchases, the bank the two deposits as they were', async () => {
    for (const [tx, spent] of [
      [txA, 'EUR:0.03'],
      [txB, 'EUR:0.03'],
    ] as const) {
      expect(await t.shop.agent.session(tx.handle!)).toMatchObject({ spent, count: 1 });
    }
    expect((await a.wallet.store.listReceipts()).length).toBe(1);
  });
});
