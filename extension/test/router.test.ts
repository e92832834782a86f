import 'fake-indexeddb/auto';
import { BRIDGE_VERSION, PAGE_TO_WALLET } from '@obol/protocol/bridge';
import { fetchHttp } from '@obol/protocol/http';
import { describe, expect, it } from 'vitest';
import { openWalletDb } from '../src/background/db.ts';
import { callerOf, route } from '../src/background/router.ts';
import { Wallet } from '@obol/protocol/customerAgent/wallet';
import { BRIDGE_MESSAGE, DEMO_OPERATORS, WALLET_MESSAGE } from '../src/shared/messages.ts';
import { WALLET_INFO } from '../src/shared/walletInfo.ts';
import { fakePlatform } from './support.ts';

const self = { id: 'ext-id', baseUrl: 'chrome-extension://ext-id/' };

describe('callerOf: who calls, from what the browser says', () => {
  it('tells the extension’s own pages from content scripts in pages, and refuses the rest', () => {
    expect(callerOf({ id: 'ext-id', url: 'chrome-extension://ext-id/popup.html' }, self)).toEqual({ kind: 'extension' });
    expect(callerOf({ id: 'ext-id', url: 'https://news.example/a', origin: 'https://news.example', tab: { id: 3 }, documentId: 'D1' }, self)).toEqual({
      kind: 'page',
      origin: 'https://news.example',
      documentId: 'D1',
    });
    // The origin comes from sender.origin (a cross-origin iframe is its own origin), else from the URL.
    expect(callerOf({ id: 'ext-id', url: 'https://frame.example/x', origin: 'https://frame.example', tab: { id: 3 }, frameId: 2 }, self)).toMatchObject({ origin: 'https://frame.example' });
    expect(callerOf({ id: 'ext-id', url: 'http://127.0.0.1:7201/news', tab: { id: 1 } }, self)).toMatchObject({ kind: 'page', origin: 'http://127.0.0.1:7201' });
    expect(callerOf({ id: 'other-ext', url: 'chrome-extension://other-ext/x.html' }, self)).toBeUndefined();
    expect(callerOf({ id: 'ext-id', url: 'https://news.example/a' }, self)).toBeUndefined(); // no tab
    expect(callerOf({ id: 'ext-id', url: 'file:///etc/passwd', tab: { id: 1 } }, self)).toBeUndefined();
    expect(callerOf({ id: 'ext-id', url: 'chrome-extension://other/popup.html', tab: { id: 1 } }, self)).toBeUndefined();
  });

  it('an opaque origin is no site: a sandboxed frame on the shop’s URL is not charged as the shop', () => {
    // Chromium names the sandboxed frame's origin "null"; its URL must not stand in for it.
    expect(callerOf({ id: 'ext-id', url: 'https://news.example/a', origin: 'null', tab: { id: 3 }, frameId: 4, documentId: 'S' }, self)).toEqual({ kind: 'opaque' });
    expect(callerOf({ id: 'ext-id', url: 'data:text/html,<p>x', tab: { id: 3 }, frameId: 5 }, self)).toEqual({ kind: 'opaque' });
    expect(callerOf({ id: 'ext-id', url: 'about:srcdoc', tab: { id: 3 }, frameId: 6 }, self)).toEqual({ kind: 'opaque' });
  });
});

describe('route: a small public surface, kept apart', async () => {
  const db = await openWalletDb('router-test');
  const wallet = new Wallet({ db, platform: fakePlatform(), http: fetchHttp(), info: WALLET_INFO, trustedRoots: [], resumeDelayMs: 0, operators: DEMO_OPERATORS });
  const page = { kind: 'page' as const, origin: 'https://news.example', documentId: 'D' };
  const request = (method: string, params: unknown) => ({ type: BRIDGE_MESSAGE, key: 'abcdefgh12345678', request: { channel: PAGE_TO_WALLET, version: BRIDGE_VERSION, id: 'r1', method, params } });

  it('answers the public methods to pages', async () => {
    expect(await route(wallet, request('obol_getInfo', {}), page)).toEqual({ result: { wallet: WALLET_INFO, hasAccount: false } });
    // No approved site: the quote tells nothing of the shopper (no currency, no rates).
    expect(await route(wallet, request('obol_quote', { prices: ['EUR:0.03'] }), page)).toEqual({ result: { tableStatus: 'withheld', quotes: [{ price: 'EUR:0.03' }] } });
    expect(await route(wallet, request('obol_pay', { merchant: 'https://news.example/obol', productId: 'a', price: 'EUR:0.03' }), page)).toMatchObject({
      error: { code: 4302 },
    });
  });

  it('never lets a page reach the private API, nor a malformed request through', async () => {
    expect(await route(wallet, { type: WALLET_MESSAGE, method: 'register', params: { operatorUrl: 'https://evil.example' } }, page)).toMatchObject({ error: { name: 'UNAUTHORIZED' } });
    expect(await route(wallet, request('overview', {}), page)).toMatchObject({ error: { name: 'MALFORMED' } });
    expect(await route(wallet, request('obol_pay', { merchant: 'javascript:alert(1)', productId: 'a', price: 'EUR:0.03' }), page)).toMatchObject({ error: { name: 'MALFORMED' } });
    expect(await route(wallet, { ...request('obol_getInfo', {}), key: 'x' }, page)).toMatchObject({ error: { name: 'MALFORMED' } });
    expect(await route(wallet, request('obol_getInfo', {}), undefined)).toBeUndefined();
  });

  it('answers an opaque origin with OPAQUE_ORIGIN, whatever it asks', async () => {
    for (const [method, params] of [
      ['obol_getInfo', {}],
      ['obol_quote', { prices: ['EUR:0.03'] }],
      ['obol_pay', { merchant: 'https://news.example/obol', productId: 'a', price: 'EUR:0.03' }],
    ] as const) {
      expect(await route(wallet, { ...request(method, params), gesture: true }, { kind: 'opaque' })).toMatchObject({ error: { code: 4306, name: 'OPAQUE_ORIGIN' } });
    }
  });

  it('answers the private API only to the extension’s pages, and bridge calls only to pages', async () => {
    expect(await route(wallet, { type: WALLET_MESSAGE, method: 'operators', params: {} }, { kind: 'extension' })).toMatchObject({ result: [{ url: 'http://127.0.0.1:7101' }, { url: 'http://127.0.0.1:7102' }] });
    expect(await route(wallet, { type: WALLET_MESSAGE, method: 'nope', params: {} }, { kind: 'extension' })).toMatchObject({ error: { name: 'UNSUPPORTED_METHOD' } });
    expect(await route(wallet, request('obol_getInfo', {}), { kind: 'extension' })).toMatchObject({ error: { name: 'UNAUTHORIZED' } });
  });
});
