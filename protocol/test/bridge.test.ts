import { describe, expect, it } from 'vitest';
import { BRIDGE_VERSION, PAGE_TO_WALLET, WALLET_TO_PAGE, isBridgeEnvelope, isBridgeRequest, isBridgeResponse } from '../src/bridge.ts';

const self = { name: 'this window' };
const pay = {
  channel: PAGE_TO_WALLET,
  version: BRIDGE_VERSION,
  id: 'req-1',
  method: 'obol_pay',
  params: { merchant: 'https://news.example/obol', productId: 'article-1', price: 'EUR:0.03' },
};

describe('the bridge trust rule', () => {
  it('accepts a well-formed public request from this window', () => {
    expect(isBridgeRequest(pay, self, self)).toBe(true);
    expect(isBridgeRequest({ ...pay, method: 'obol_quote', params: { prices: ['EUR:0.03'] } }, self, self)).toBe(true);
    // Issue 14: what was bought here, and opening it again.
    expect(isBridgeRequest({ ...pay, method: 'obol_purchased', params: { merchant: pay.params.merchant, productIds: ['article-1', 'article-2'] } }, self, self)).toBe(true);
    expect(isBridgeRequest({ ...pay, method: 'obol_open', params: { merchant: pay.params.merchant, productId: 'article-1' } }, self, self)).toBe(true);
  });

  it.each([
    ['another window', pay, { other: true }],
    ['the answer channel', { ...pay, channel: WALLET_TO_PAGE }, self],
    ['another version', { ...pay, version: 2 }, self],
    ['a private method', { ...pay, method: 'wallet_exportKeys', params: {} }, self],
    ['an inherited name', { ...pay, method: 'constructor', params: {} }, self],
    ['bad params', { ...pay, params: { ...pay.params, price: '0.03' } }, self],
    ['extra params', { ...pay, params: { ...pay.params, origin: 'https://bank.example' } }, self],
    ['a weird id', { ...pay, id: '<script>' }, self],
    ['not an object', 'obol_pay', self],
    ['no products to ask about', { ...pay, method: 'obol_purchased', params: { merchant: pay.params.merchant, productIds: [] } }, self],
    ['too many products to ask about', { ...pay, method: 'obol_purchased', params: { merchant: pay.params.merchant, productIds: Array.from({ length: 101 }, (_, i) => `a${i}`) } }, self],
    ['an open naming no product', { ...pay, method: 'obol_open', params: { merchant: pay.params.merchant } }, self],
    ['an open with a price (nothing is paid)', { ...pay, method: 'obol_open', params: pay.params }, self],
  ])('drops a message from %s', (_what, data, source) => {
    expect(isBridgeRequest(data, source, self)).toBe(false);
  });

  it('the content script relays well-formed envelopes; the worker also checks the params', () => {
    const badParams = { ...pay, params: { ...pay.params, price: '0.03' } };
    expect(isBridgeEnvelope(badParams, self, self)).toBe(true);
    expect(isBridgeRequest(badParams, self, self)).toBe(false);
    expect(isBridgeEnvelope({ ...pay, params: 'x' }, self, self)).toBe(false);
    expect(isBridgeEnvelope({ ...pay, method: 'wallet_exportKeys' }, self, self)).toBe(false);
  });

  it('the page accepts only answers on the wallet channel from its own window', () => {
    const answer = { channel: WALLET_TO_PAGE, version: BRIDGE_VERSION, id: 'req-1', result: {} };
    expect(isBridgeResponse(answer, self, self)).toBe(true);
    expect(isBridgeResponse(answer, {}, self)).toBe(false);
    expect(isBridgeResponse({ ...answer, channel: PAGE_TO_WALLET }, self, self)).toBe(false);
  });
});
