import { ANNOUNCE_EVENT, PAGE_TO_WALLET, REQUEST_EVENT, WALLET_TO_PAGE, type WalletInfo } from '@obol/protocol/bridge';
import { ObolError } from '@obol/protocol/errors';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BridgeWindow, isWalletInfo, matchResponse, newRequestId, WalletBridge, type WalletStatus } from '../src/bridgeClient.ts';

const WALLET: WalletInfo = { uuid: 'a1b2c3d4-0000-4000-8000-000000000001', name: 'Obol Wallet', icon: 'data:image/svg+xml,<svg/>', rdns: 'org.obol.wallet' };

/** A window as the bridge sees it: events, an origin, and postMessage recorded. */
class FakeWindow extends EventTarget implements BridgeWindow {
  readonly location = { origin: 'https://news.example' };
  readonly sent: Array<{ message: Record<string, unknown>; targetOrigin: string }> = [];
  postMessage(message: unknown, targetOrigin: string): void {
    this.sent.push({ message: message as Record<string, unknown>, targetOrigin });
  }
  announce(info: unknown = WALLET): void {
    this.dispatchEvent(new CustomEvent(ANNOUNCE_EVENT, { detail: { info } }));
  }
  /** An answer as the wallet's content script posts it (source: this window). */
  answer(data: unknown, source: unknown = this): void {
    // Node's MessageEvent takes only a MessagePort as source; the bridge reads just these two fields.
    const event = new Event('message');
    Object.defineProperties(event, { data: { value: data }, source: { value: source } });
    this.dispatchEvent(event);
  }
  last(): Record<string, unknown> {
    const m = this.sent.at(-1);
    if (!m) throw new Error('nothing sent');
    return m.message;
  }
}

const ok = (id: unknown, result: unknown) => ({ channel: WALLET_TO_PAGE, version: 1, id, result });
const QUOTE = { tableStatus: 'valid', quotes: [{ price: 'EUR:0.03', converted: 'SEK:0.34' }] };
const PAID = {
  transactionId: 'op-sek.1.1',
  n: 1,
  productId: 'why-micropayments',
  price: 'EUR:0.03',
  content: 'aGk',
  contentType: 'text/plain',
  contentHash: 'A'.repeat(43),
  receiptId: 'r1',
};

let win: FakeWindow;
let bridge: WalletBridge;
beforeEach(() => {
  vi.useFakeTimers();
  win = new FakeWindow();
  bridge = new WalletBridge(win);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('discovery', () => {
  it('asks wallets to announce and keeps the first valid one', async () => {
    const asked = vi.fn(() => win.announce());
    win.addEventListener(REQUEST_EVENT, asked);
    const seen: WalletStatus[] = [];
    bridge.subscribe((s) => seen.push(s));
    bridge.start();
    expect(asked).toHaveBeenCalledOnce();
    win.announce({ ...WALLET, uuid: 'second', name: 'Other' });
    await expect(bridge.ready()).resolves.toEqual(WALLET);
    expect(seen.map((s) => s.kind)).toEqual(['looking', 'found']);
  });

  it('ignores announces that are not a WalletInfo', async () => {
    bridge.start();
    win.announce({ uuid: 'x', name: 'No icon', rdns: 'evil' });
    win.announce('Obol Wallet');
    win.dispatchEvent(new CustomEvent(ANNOUNCE_EVENT)); // no detail at all
    const ready = bridge.ready();
    await vi.advanceTimersByTimeAsync(600);
    await expect(ready).resolves.toBeNull();
  });

  it('declares no wallet after ~600 ms, then accepts a late announce', async () => {
    const seen: string[] = [];
    bridge.subscribe((s) => seen.push(s.kind));
    bridge.start();
    await vi.advanceTimersByTimeAsync(599);
    expect(seen).toEqual(['looking']);
    await vi.advanceTimersByTimeAsync(1);
    await expect(bridge.ready()).resolves.toBeNull();
    win.announce();
    await expect(bridge.ready()).resolves.toEqual(WALLET);
    expect(seen).toEqual(['looking', 'none', 'found']);
  });

  it('checks WalletInfo', () => {
    expect(isWalletInfo(WALLET)).toBe(true);
    expect(isWalletInfo({ ...WALLET, icon: 'https://evil.example/i.png' })).toBe(false);
    expect(isWalletInfo({ ...WALLET, name: '' })).toBe(false);
    expect(isWalletInfo({ ...WALLET, rdns: 'x'.repeat(101) })).toBe(false);
    expect(isWalletInfo(null)).toBe(false);
  });
});

describe('requests and answers', () => {
  it('posts a versioned page-to-wallet request to this origin only', () => {
    bridge.start();
    bridge.request('obol_quote', { prices: ['EUR:0.03'] }).catch(() => {});
    const { message, targetOrigin } = win.sent[0] ?? { message: {}, targetOrigin: '' };
    expect(targetOrigin).toBe('https://news.example');
    expect(message).toMatchObject({ channel: PAGE_TO_WALLET, version: 1, method: 'obol_quote', params: { prices: ['EUR:0.03'] } });
    expect(message.id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(newRequestId()).not.toBe(newRequestId());
  });

  it('matches answers by id, only from this window on the wallet channel and version', async () => {
    bridge.start();
    const p = bridge.request('obol_quote', { prices: ['EUR:0.03'] });
    const id = win.last().id;
    const settled = vi.fn();
    p.then(settled, settled);
    win.answer(ok(id, { ...QUOTE, quotes: [] }), {}); // another window (an iframe)
    win.answer({ ...ok(id, QUOTE), channel: PAGE_TO_WALLET }); // our own request's channel
    win.answer({ ...ok(id, QUOTE), version: 2 });
    win.answer(ok('someone-else', QUOTE));
    win.answer(win.last()); // the request itself, echoed back
    await Promise.resolve();
    expect(settled).not.toHaveBeenCalled();
    win.answer(ok(id, QUOTE));
    await expect(p).resolves.toEqual(QUOTE);
  });

  it('matchResponse is the filter in one function', () => {
    const pending = new Set(['abc']);
    const self = {};
    expect(matchResponse(ok('abc', QUOTE), self, self, pending)).not.toBeNull();
    expect(matchResponse(ok('abc', QUOTE), {}, self, pending)).toBeNull();
    expect(matchResponse(ok('nope', QUOTE), self, self, pending)).toBeNull();
    expect(matchResponse({ channel: WALLET_TO_PAGE, version: 1, id: 'abc' }, self, self, pending)).toBeNull();
    expect(matchResponse(null, self, self, pending)).toBeNull();
  });

  it('rejects with the wallet error, rebuilt from the catalogue', async () => {
    bridge.start();
    const p = bridge.request('obol_pay', { merchant: 'https://news.example/obol', productId: 'a', price: 'EUR:0.03' });
    win.answer({ channel: WALLET_TO_PAGE, version: 1, id: win.last().id, error: { code: 4001, name: 'USER_REJECTED', message: 'rejected' } });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObolError);
    expect(err).toMatchObject({ code: 4001, name: 'USER_REJECTED', message: 'rejected' });
  });

  it('an answer is taken once; a second one with the same id is ignored', async () => {
    bridge.start();
    const p = bridge.request('obol_pay', { merchant: 'https://news.example/obol', productId: 'a', price: 'EUR:0.03' });
    const id = win.last().id;
    win.answer(ok(id, PAID));
    win.answer(ok(id, { ...PAID, n: 2 }));
    await expect(p).resolves.toMatchObject({ n: 1 });
  });

  it('refuses an answer whose result it cannot read', async () => {
    bridge.start();
    const p = bridge.request('obol_pay', { merchant: 'https://news.example/obol', productId: 'a', price: 'EUR:0.03' });
    win.answer(ok(win.last().id, { ...PAID, content: 42 }));
    await expect(p).rejects.toMatchObject({ name: 'MALFORMED' });
  });

  it('times out: 10 s for quotes, 120 s for payments', async () => {
    bridge.start();
    const quote = bridge.request('obol_quote', { prices: ['EUR:0.03'] }).catch((e: unknown) => e);
    const pay = bridge.request('obol_pay', { merchant: 'https://news.example/obol', productId: 'a', price: 'EUR:0.03' });
    const paySettled = vi.fn();
    pay.then(paySettled, paySettled);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await quote).toMatchObject({ name: 'TIMEOUT', code: 6001 });
    expect(paySettled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(110_000);
    await expect(pay).rejects.toMatchObject({ name: 'TIMEOUT' });
  });
});
