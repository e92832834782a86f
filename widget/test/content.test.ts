import { describe, expect, it } from 'vitest';
import { base64UrlToBytes, fileNameFor, parseContentType, toDelivery } from '../src/content.ts';
import { conversionFor, QuoteBook } from '../src/quotes.ts';

const b64u = (s: string | Uint8Array) =>
  Buffer.from(typeof s === 'string' ? Buffer.from(s, 'utf8') : s)
    .toString('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const paid = (content: string, contentType: string) => ({
  transactionId: 'op-sek.1.1',
  n: 1,
  productId: 'why-micropayments',
  price: 'EUR:0.03',
  content,
  contentType,
  contentHash: 'A'.repeat(43),
  receiptId: 'r1',
});

describe('delivered content', () => {
  it('decodes base64url, with or without padding', () => {
    const bytes = new Uint8Array([0, 250, 251, 252, 253, 254, 255]);
    expect(base64UrlToBytes(b64u(bytes))).toEqual(bytes);
    expect(new TextDecoder().decode(base64UrlToBytes('aGk='))).toBe('hi');
    expect(() => base64UrlToBytes('a+b/')).toThrow(/base64url/);
  });

  it('reads text types as text, in their charset', () => {
    const d = toDelivery(paid(b64u('Micropayments — why? ✓'), 'text/plain; charset=utf-8'));
    expect(d).toMatchObject({ kind: 'text', html: false, text: 'Micropayments — why? ✓', productId: 'why-micropayments' });
    expect(toDelivery(paid(b64u('<p>x</p>'), 'text/html'))).toMatchObject({ kind: 'text', html: true, text: '<p>x</p>' });
    const latin1 = toDelivery(paid(b64u(new Uint8Array([0x63, 0x61, 0x66, 0xe9])), 'text/plain; charset=ISO-8859-1'));
    expect(latin1).toMatchObject({ text: 'café' });
    expect(toDelivery(paid(b64u('ok'), 'text/plain; charset=nonsense'))).toMatchObject({ text: 'ok' });
  });

  it('offers everything else as a file with a safe name', () => {
    const d = toDelivery(paid(b64u('%PDF-1.7'), 'application/pdf'));
    expect(d).toMatchObject({ kind: 'file', contentType: 'application/pdf', filename: 'why-micropayments.pdf' });
    expect(parseContentType('Text/HTML; Charset="UTF-8"')).toEqual({ type: 'text/html', charset: 'utf-8' });
    expect(fileNameFor('song', 'audio/mpeg')).toBe('song.mp3');
    expect(fileNameFor('data.bin', 'application/x-unknown')).toBe('data.bin');
    expect(fileNameFor('x', 'application/pdf', '../../etc/passwd')).toBe('etc_passwd');
    expect(fileNameFor('x', 'application/pdf', 'Report 2024.pdf')).toBe('Report_2024.pdf');
  });
});

describe('conversion shown next to a price', () => {
  it('shows a fresh conversion, says when it is out of date, and nothing otherwise', () => {
    expect(conversionFor('EUR:0.03', { tableStatus: 'valid', converted: 'SEK:0.34' })).toEqual({ kind: 'converted', text: '0.34 SEK' });
    expect(conversionFor('EUR:0.03', { tableStatus: 'refreshed', converted: 'SEK:0.34' })).toEqual({ kind: 'converted', text: '0.34 SEK' });
    expect(conversionFor('EUR:0.03', { tableStatus: 'expired', converted: 'SEK:0.34' })).toEqual({ kind: 'stale' });
    expect(conversionFor('EUR:0.03', { tableStatus: 'unavailable' })).toEqual({ kind: 'stale' });
    expect(conversionFor('EUR:0.03', { tableStatus: 'missing' })).toEqual({ kind: 'none' });
    // Not approved by the shopper yet: the wallet tells the site no rates, the merchant's price stands alone.
    expect(conversionFor('EUR:0.03', { tableStatus: 'withheld' })).toEqual({ kind: 'none' });
    expect(conversionFor('EUR:0.03', { tableStatus: 'valid', converted: 'EUR:0.03' })).toEqual({ kind: 'none' });
    expect(conversionFor('EUR:0.03', { tableStatus: 'valid', converted: '<b>9</b>' })).toEqual({ kind: 'none' });
    expect(conversionFor('EUR:0.03', null)).toEqual({ kind: 'none' });
  });

  it('asks the wallet once for all the prices on a page, each price once', async () => {
    const calls: string[][] = [];
    const book = new QuoteBook({
      request: (async (_m: string, p: { prices: string[] }) => {
        calls.push(p.prices);
        return { tableStatus: 'valid', quotes: [...p.prices].reverse().map((price) => ({ price, converted: `SEK:${price.slice(4)}9` })) };
      }) as never,
    });
    const [a, b, c] = await Promise.all([book.get('EUR:0.03'), book.get('EUR:0.05'), book.get('EUR:0.03')]);
    expect(calls).toEqual([['EUR:0.03', 'EUR:0.05']]);
    expect(a).toEqual({ tableStatus: 'valid', converted: 'SEK:0.039' });
    expect(b).toEqual({ tableStatus: 'valid', converted: 'SEK:0.059' });
    expect(c).toEqual(a);
  });

  it('keeps no withheld answer, and asks again for every price after refresh()', async () => {
    let status = 'withheld';
    let asked = 0;
    const book = new QuoteBook({
      request: (async (_m: string, p: { prices: string[] }) => {
        asked++;
        return { tableStatus: status, quotes: p.prices.map((price) => ({ price, ...(status === 'valid' ? { converted: 'SEK:0.34' } : {}) })) };
      }) as never,
    });
    let told = 0;
    book.subscribe(() => told++);
    expect(await book.get('EUR:0.03')).toEqual({ tableStatus: 'withheld', converted: undefined });
    status = 'valid';
    expect(await book.get('EUR:0.03')).toEqual({ tableStatus: 'valid', converted: 'SEK:0.34' }); // asked again
    expect(await book.get('EUR:0.03')).toEqual({ tableStatus: 'valid', converted: 'SEK:0.34' }); // kept
    expect(asked).toBe(2);
    book.refresh();
    expect(told).toBe(1);
    await book.get('EUR:0.03');
    expect(asked).toBe(3);
  });

  it('shows no conversion when the wallet cannot quote, and asks again later', async () => {
    let fail = true;
    const book = new QuoteBook({
      request: (async () => {
        if (fail) throw new Error('no account');
        return { tableStatus: 'valid', quotes: [{ price: 'EUR:0.03', converted: 'SEK:0.34' }] };
      }) as never,
    });
    expect(await book.get('EUR:0.03')).toBeNull();
    fail = false;
    expect(await book.get('EUR:0.03')).toEqual({ tableStatus: 'valid', converted: 'SEK:0.34' });
  });
});
