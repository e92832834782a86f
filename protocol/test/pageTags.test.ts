import { describe, expect, it } from 'vitest';
import { checkProductId, moduleOfScript, resolveMerchant } from '@obol/protocol/pageTags';

const page = 'https://news.example/articles/why?x=1#top';

describe('resolveMerchant', () => {
  it('resolves data-merchant against the page URL', () => {
    expect(resolveMerchant(null, '/obol', page)).toBe('https://news.example/obol');
    expect(resolveMerchant(null, 'obol/', page)).toBe('https://news.example/articles/obol/');
    expect(resolveMerchant(null, 'https://pay.news.example/obol#x', page)).toBe('https://pay.news.example/obol');
  });

  it("prefers the element's own merchant attribute", () => {
    expect(resolveMerchant('/shop2/obol', '/obol', page)).toBe('https://news.example/shop2/obol');
    expect(resolveMerchant('  ', '/obol', page)).toBe('https://news.example/obol');
  });

  it('refuses what the wallet would refuse', () => {
    expect(() => resolveMerchant(null, null, page)).toThrow(/no merchant/);
    expect(() => resolveMerchant('javascript:alert(1)', null, page)).toThrow(/http/);
    expect(() => resolveMerchant('data:text/plain,x', null, page)).toThrow(/http/);
    expect(() => resolveMerchant('https://u:p@news.example/obol', null, page)).toThrow(/credentials/);
    expect(() => resolveMerchant(`/${'a'.repeat(600)}`, null, page)).toThrow(/too long/);
    expect(() => resolveMerchant('/obol', null, 'not a url')).toThrow(/not a URL/);
  });
});

describe('checkProductId', () => {
  it('accepts the bridge product id shape only', () => {
    expect(checkProductId('why-micropayments')).toBe('why-micropayments');
    expect(checkProductId('report.2024_v2')).toBe('report.2024_v2');
    expect(() => checkProductId('')).toThrow();
    expect(() => checkProductId('-lead')).toThrow();
    expect(() => checkProductId('has space')).toThrow();
    expect(() => checkProductId('a'.repeat(129))).toThrow();
  });
});

describe('the module a widget script came from', () => {
  it('is the folder of the script’s URL, without the trailing slash', () => {
    expect(moduleOfScript('https://pay.blog.example/obol/obol-widget.js')).toBe('https://pay.blog.example/obol');
    expect(moduleOfScript('https://pay.blog.example/obol/obol-widget.js?v=2')).toBe('https://pay.blog.example/obol');
    expect(moduleOfScript('https://shop.example/obol-widget.js')).toBe('https://shop.example');
    expect(moduleOfScript('')).toBeNull();
    expect(moduleOfScript(undefined)).toBeNull();
  });
});
