// @vitest-environment happy-dom
import type { BridgeMethod, WalletInfo } from '@obol/protocol/bridge';
import { ObolError } from '@obol/protocol/errors';
import { render } from 'preact';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApi } from '../src/api.ts';
import type { WalletBridge, WalletStatus } from '../src/bridgeClient.ts';
import { ObolBuy } from '../src/buy.tsx';
import { configure } from '../src/context.ts';
import { OwnedBook } from '../src/owned.ts';
import { ObolPaywall } from '../src/paywall.tsx';
import { QuoteBook } from '../src/quotes.ts';
import { htmlToChildren } from '../src/safeHtml.ts';

const WALLET: WalletInfo = { uuid: 'u1', name: 'Obol Wallet', icon: 'data:,', rdns: 'org.obol.wallet' };
const b64u = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const paidResult = (productId: string, content: string, contentType = 'text/plain') => ({
  transactionId: 'op-sek.1.1',
  n: 1,
  productId,
  price: 'EUR:0.03',
  content: b64u(content),
  contentType,
  contentHash: 'A'.repeat(43),
  receiptId: 'acc-1',
});

/** The bridge as the elements use it, driven by the test. */
class FakeBridge {
  status: WalletStatus = { kind: 'looking' };
  listeners = new Set<(s: WalletStatus) => void>();
  handler: (method: BridgeMethod, params: Record<string, unknown>) => Promise<unknown> = async () => {
    throw new ObolError('UNAVAILABLE', 'no handler');
  };
  /** What the wallet says was bought here (obol_purchased): nothing, unless a test says so. */
  bought: string[] = [];
  request = vi.fn((method: BridgeMethod, params: Record<string, unknown>) =>
    method === 'obol_purchased' ? Promise.resolve({ productIds: (params.productIds as string[]).filter((id) => this.bought.includes(id)) }) : this.handler(method, params),
  );
  ready = async () => (this.status.kind === 'found' ? this.status.wallet : this.status.kind === 'none' ? null : WALLET);
  subscribe(fn: (s: WalletStatus) => void) {
    this.listeners.add(fn);
    fn(this.status);
    return () => this.listeners.delete(fn);
  }
  set(status: WalletStatus) {
    this.status = status;
    for (const l of this.listeners) l(status);
  }
}

let bridge: FakeBridge;
const tick = () => new Promise((r) => setTimeout(r, 0));
const shadow = (el: Element) => el.shadowRoot as ShadowRoot;
const button = (el: Element) => shadow(el).querySelector('button') as HTMLButtonElement;
const status = (el: Element) => shadow(el).querySelector('[role="status"]')?.textContent ?? '';

beforeAll(() => {
  customElements.define('obol-buy', ObolBuy);
  customElements.define('obol-paywall', ObolPaywall);
});

beforeEach(() => {
  document.body.innerHTML = '';
  bridge = new FakeBridge();
  const ctx = {
    bridge: bridge as unknown as WalletBridge,
    quotes: new QuoteBook(bridge as unknown as WalletBridge),
    owned: new OwnedBook(bridge as unknown as WalletBridge),
    merchant: '/obol',
    walletHelp: null,
    doc: document,
  };
  configure(ctx);
  bridge.handler = async (method, params) => {
    if (method === 'obol_quote') return { tableStatus: 'valid', quotes: (params.prices as string[]).map((price) => ({ price, converted: 'SEK:0.34' })) };
    return paidResult(String(params.productId), 'The whole article.');
  };
});

function page(html: string): void {
  document.body.innerHTML = html;
}

describe('<obol-buy>', () => {
  it('is a real button showing the price, named for screen readers with the price', async () => {
    page('<obol-buy product="why-micropayments" price="0.03" currency="EUR" description="Article: Why micropayments"></obol-buy>');
    const el = document.querySelector('obol-buy') as ObolBuy;
    expect(button(el).textContent).toBe('Buy Article: Why micropayments for 0.03 EUR');
    expect(shadow(el).querySelector('.price')?.textContent).toBe('0.03 EUR');
    expect(shadow(el).querySelector('[role="status"]')?.getAttribute('aria-live')).toBe('polite');
  });

  it("adds the shopper's-currency price once the wallet quoted it, or says it is out of date", async () => {
    page('<obol-buy product="a" price="0.03" currency="EUR"></obol-buy><obol-buy product="b" price="0.05" currency="EUR"></obol-buy>');
    bridge.set({ kind: 'found', wallet: WALLET });
    await tick();
    expect(bridge.request.mock.calls.filter(([m]) => m === 'obol_quote')).toEqual([['obol_quote', { prices: ['EUR:0.03', 'EUR:0.05'] }]]);
    const el = document.querySelector('obol-buy') as Element;
    expect(shadow(el).querySelector('.converted [aria-hidden="true"]')?.textContent).toBe('≈ 0.34 SEK');
    expect(button(el).textContent).toBe('Buy a for 0.03 EUR≈ 0.34 SEK, about 0.34 SEK');

    bridge.handler = async () => ({ tableStatus: 'expired', quotes: [{ price: 'EUR:0.07', converted: 'SEK:0.80' }] });
    el.setAttribute('price', '0.07');
    await tick();
    expect(shadow(el).querySelector('.converted')?.textContent).toContain('conversion out of date');
    expect(shadow(el).textContent).not.toContain('0.80');
  });

  it('shows the merchant’s price only while the wallet withholds rates, and asks again after a purchase', async () => {
    let approved = false;
    bridge.handler = async (method, params) => {
      if (method === 'obol_quote') {
        const prices = params.prices as string[];
        return approved ? { tableStatus: 'valid', quotes: prices.map((price) => ({ price, converted: 'SEK:0.34' })) } : { tableStatus: 'withheld', quotes: prices.map((price) => ({ price })) };
      }
      approved = true; // the wallet approves the site once this confirmed purchase succeeded
      return paidResult(String(params.productId), 'The whole article.');
    };
    page('<obol-buy product="a" price="0.03" currency="EUR"></obol-buy><obol-buy product="b" price="0.03" currency="EUR"></obol-buy>');
    bridge.set({ kind: 'found', wallet: WALLET });
    await tick();
    const [a, b] = [...document.querySelectorAll('obol-buy')] as Element[];
    expect(shadow(b!).textContent).not.toContain('SEK');
    expect(button(b!).textContent).toBe('Buy b for 0.03 EUR');
    button(a!).click();
    await tick();
    await tick();
    expect(shadow(b!).querySelector('.converted [aria-hidden="true"]')?.textContent).toBe('≈ 0.34 SEK');
  });

  it('pays on click: obol_pay with the wire price and the absolute merchant, then obol:paid and the paywall opens', async () => {
    page(`<obol-buy product="why-micropayments" price="0.03" currency="EUR" description="Article" for="pw"></obol-buy>
          <obol-paywall id="pw"><p class="teaser">Buy to read.</p></obol-paywall>`);
    bridge.set({ kind: 'found', wallet: WALLET });
    const el = document.querySelector('obol-buy') as Element;
    const paywall = document.querySelector('obol-paywall') as ObolPaywall;
    expect(shadow(paywall).querySelector('slot')).not.toBeNull();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    bridge.handler = async (method, params) => {
      if (method === 'obol_quote') return { tableStatus: 'missing', quotes: [] };
      await gate;
      return paidResult(String(params.productId), 'The whole <b>article</b>.\nSecond line.');
    };
    const events: CustomEvent[] = [];
    document.addEventListener('obol:paid', (e) => events.push(e as CustomEvent));
    button(el).click();
    await tick();
    expect(button(el).getAttribute('aria-busy')).toBe('true');
    expect(button(el).getAttribute('aria-disabled')).toBe('true');
    expect(status(el)).toBe('Waiting for your Obol wallet…');
    button(el).click(); // a second click while paying asks nothing more
    release();
    await tick();
    const pays = bridge.request.mock.calls.filter(([m]) => m === 'obol_pay');
    expect(pays).toEqual([
      ['obol_pay', { merchant: `${location.origin}/obol`, productId: 'why-micropayments', price: 'EUR:0.03', description: 'Article' }],
    ]);
    expect(events).toHaveLength(1);
    expect(events[0]?.bubbles && events[0]?.composed).toBe(true);
    expect(events[0]?.detail).toMatchObject({ productId: 'why-micropayments', receiptId: 'acc-1', text: 'The whole <b>article</b>.\nSecond line.' });
    expect(events[0]?.detail).not.toHaveProperty('content');
    expect(status(el)).toBe('Paid 0.03 EUR. The content is unlocked.');
    expect(button(el).textContent).toContain('Paid');
    expect(paywall.unlocked).toBe(true);
    expect(paywall.hasAttribute('unlocked')).toBe(true);
    expect(shadow(paywall).querySelector('slot')).toBeNull();
    const shown = shadow(paywall).querySelector('.plain') as HTMLElement;
    expect(shown.textContent).toBe('The whole <b>article</b>.\nSecond line.');
    expect(shown.querySelector('b')).toBeNull(); // text, never markup
    button(el).click();
    await tick();
    expect(bridge.request.mock.calls.filter(([m]) => m === 'obol_pay')).toHaveLength(1);
  });

  it("shows the wallet error's sentence and fires obol:failed; the shopper can try again", async () => {
    page('<obol-buy product="a" price="0.03" currency="EUR"></obol-buy>');
    bridge.set({ kind: 'found', wallet: WALLET });
    bridge.handler = async (method) => {
      if (method === 'obol_quote') return { tableStatus: 'valid', quotes: [] };
      throw new ObolError('USER_REJECTED', 'the shopper said no');
    };
    const failed = vi.fn();
    document.addEventListener('obol:failed', (e) => failed((e as CustomEvent).detail));
    const el = document.querySelector('obol-buy') as Element;
    button(el).click();
    await tick();
    expect(failed).toHaveBeenCalledWith({ code: 4001, name: 'USER_REJECTED', message: 'the shopper said no' });
    expect(status(el)).toBe('You declined the payment.');
    expect(button(el).getAttribute('aria-disabled')).toBe('false');
    bridge.handler = async () => {
      throw new ObolError('NO_WALLET_ACCOUNT', 'no account');
    };
    button(el).click();
    await tick();
    expect(status(el)).toBe('Set up your Obol wallet first.');
  });

  it('asks once which products were bought here; a bought one offers to open, and opening it asks obol_open, never obol_pay', async () => {
    bridge.bought = ['why'];
    page(`<obol-buy product="why" price="0.03" currency="EUR"></obol-buy><obol-buy product="how" price="0.03" currency="EUR"></obol-buy>
          <obol-paywall product="why">Locked</obol-paywall>`);
    bridge.set({ kind: 'found', wallet: WALLET });
    await tick();
    await tick();
    // One question for both buttons, about this merchant.
    expect(bridge.request.mock.calls.filter(([m]) => m === 'obol_purchased')).toEqual([['obol_purchased', { merchant: `${location.origin}/obol`, productIds: ['why', 'how'] }]]);
    const [bought, other] = [...document.querySelectorAll('obol-buy')] as Element[];
    expect(button(bought!).textContent).toBe('✓ Bought: open why');
    expect(button(other!).textContent).toContain('Buy how for 0.03 EUR');
    const opened: CustomEvent[] = [];
    const paid = vi.fn();
    document.addEventListener('obol:opened', (e) => opened.push(e as CustomEvent));
    document.addEventListener('obol:paid', paid);
    button(bought!).click();
    await tick();
    await tick();
    expect(bridge.request.mock.calls.filter(([m]) => m === 'obol_open')).toEqual([['obol_open', { merchant: `${location.origin}/obol`, productId: 'why' }]]);
    expect(bridge.request.mock.calls.filter(([m]) => m === 'obol_pay')).toEqual([]);
    expect(opened[0]?.detail).toMatchObject({ productId: 'why', text: 'The whole article.' });
    expect(paid).not.toHaveBeenCalled();
    expect(status(bought!)).toBe('Opened again, not charged. The content is unlocked.');
    expect((document.querySelector('obol-paywall') as ObolPaywall).unlocked).toBe(true);
  });

  it('a failed open stays an open: the next click asks to open again, never to buy', async () => {
    bridge.bought = ['why'];
    page('<obol-buy product="why" price="0.03" currency="EUR"></obol-buy>');
    bridge.set({ kind: 'found', wallet: WALLET });
    await tick();
    await tick();
    const el = document.querySelector('obol-buy') as Element;
    bridge.handler = async (method) => {
      if (method === 'obol_open') throw new ObolError('DISCONNECTED', 'the wallet went away');
      throw new Error(`unexpected ${method}`);
    };
    button(el).click();
    await tick();
    button(el).click();
    await tick();
    expect(bridge.request.mock.calls.filter(([m]) => m === 'obol_open')).toHaveLength(2);
    expect(bridge.request.mock.calls.filter(([m]) => m === 'obol_pay')).toEqual([]);
  });

  it('falls back honestly without a wallet, fires obol:no-wallet, and switches when one announces late', async () => {
    page('<obol-buy product="a" price="0.03" currency="EUR" wallet-help="https://obol.example/get"></obol-buy>');
    const noWallet = vi.fn();
    document.addEventListener('obol:no-wallet', noWallet);
    const el = document.querySelector('obol-buy') as Element;
    bridge.set({ kind: 'none' });
    await tick();
    expect(noWallet).toHaveBeenCalledOnce();
    expect(button(el)).toBeNull();
    expect(shadow(el).querySelector('.fallback')?.textContent).toContain('Obol wallet needed');
    expect(shadow(el).querySelector('a')?.getAttribute('href')).toBe('https://obol.example/get');
    expect(bridge.request).not.toHaveBeenCalled();
    bridge.set({ kind: 'found', wallet: WALLET });
    await tick();
    expect(button(el)).not.toBeNull();
    expect(noWallet).toHaveBeenCalledOnce();
  });

  it('never links a javascript: wallet-help, and says so in words instead', async () => {
    page('<obol-buy product="a" price="0.03" currency="EUR" wallet-help="javascript:alert(1)"></obol-buy>');
    bridge.set({ kind: 'none' });
    const el = document.querySelector('obol-buy') as Element;
    expect(shadow(el).querySelector('a')).toBeNull();
    expect(shadow(el).textContent).toContain('add the Obol wallet to your browser');
  });

  it('does not offer to pay a price it cannot read', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    page('<obol-buy product="a" price="0.031" currency="EUR"></obol-buy>');
    const el = document.querySelector('obol-buy') as Element;
    expect(button(el)).toBeNull();
    expect(shadow(el).textContent).toContain('not set up correctly');
    expect(error).toHaveBeenCalledWith(expect.stringContaining('EUR has 2 decimal places'));
    error.mockRestore();
  });
});

describe('<obol-paywall>', () => {
  it('opens for its product (without for=) and offers files as a download with the right name and type', async () => {
    page(`<obol-buy product="report" price="0.50" currency="EUR"></obol-buy>
          <obol-paywall product="report" filename="Report 2024.pdf">Locked</obol-paywall>
          <obol-paywall product="other">Still locked</obol-paywall>`);
    bridge.set({ kind: 'found', wallet: WALLET });
    bridge.handler = async (method) => (method === 'obol_quote' ? { tableStatus: 'missing', quotes: [] } : paidResult('report', '%PDF-1.7', 'application/pdf'));
    button(document.querySelector('obol-buy') as Element).click();
    await tick();
    const [mine, other] = Array.from(document.querySelectorAll('obol-paywall')) as ObolPaywall[];
    const link = shadow(mine as Element).querySelector('a') as HTMLAnchorElement;
    expect(link.getAttribute('download')).toBe('Report_2024.pdf');
    expect(link.getAttribute('type')).toBe('application/pdf');
    expect(link.getAttribute('href')).toMatch(/^blob:/);
    expect(other?.unlocked).toBe(false);
  });

  it('offers a text document as a file where the paywall names a file name, and shows it inline where it does not', async () => {
    page(`<obol-buy product="notes" price="0.20" currency="EUR"></obol-buy>
          <obol-paywall product="notes" filename="field-notes.md">Locked</obol-paywall>
          <obol-paywall product="notes">Locked too</obol-paywall>`);
    bridge.set({ kind: 'found', wallet: WALLET });
    bridge.handler = async (method) => (method === 'obol_quote' ? { tableStatus: 'missing', quotes: [] } : paidResult('notes', '# Field notes', 'text/markdown; charset=utf-8'));
    button(document.querySelector('obol-buy') as Element).click();
    await tick();
    const [asFile, inline] = Array.from(document.querySelectorAll('obol-paywall')) as ObolPaywall[];
    const link = shadow(asFile as Element).querySelector('a') as HTMLAnchorElement;
    expect(link.getAttribute('download')).toBe('field-notes.md');
    expect(link.getAttribute('type')).toBe('text/markdown; charset=utf-8');
    expect(shadow(inline as Element).querySelector('.plain')?.textContent).toBe('# Field notes');
  });

  it('shows text/html as rebuilt text structure: no scripts, handlers, styles or javascript: links', () => {
    const host = document.createElement('div');
    render(
      htmlToChildren(
        '<h2 onclick="x()">Title</h2><p style="color:red">Hello <em>you</em><script>alert(1)</script><img src=x onerror="alert(2)"></p>' +
          '<a href="javascript:alert(3)">bad</a> <a href="https://ok.example/">ok</a><form><input name="card"></form><custom-x>kept text</custom-x>',
      ),
      host,
    );
    expect(host.innerHTML).toBe(
      '<h2>Title</h2><p>Hello <em>you</em></p><span>bad</span> <a href="https://ok.example/" rel="noopener noreferrer nofollow" target="_blank">ok</a>kept text',
    );
  });
});

describe('window.Obol', () => {
  it('pays by script and opens matching paywalls; refuses bad input before asking the wallet', async () => {
    page('<obol-paywall product="why">Locked</obol-paywall>');
    bridge.set({ kind: 'found', wallet: WALLET });
    const b = bridge as unknown as WalletBridge;
    const api = createApi({ bridge: b, quotes: new QuoteBook(b), owned: new OwnedBook(b), merchant: '/obol', walletHelp: null, doc: document });
    const r = await api.pay({ product: 'why', price: '0.03', currency: 'EUR' });
    expect(r).toMatchObject({ productId: 'why', text: 'The whole article.', unlocked: 1 });
    await expect(api.pay({ product: 'why', price: '0.031', currency: 'EUR' })).rejects.toMatchObject({ name: 'INVALID_AMOUNT' });
    await expect(api.quote(['EUR:0.3'])).resolves.toMatchObject({ quotes: [{ price: 'EUR:0.30' }] });
    await expect(api.quote([])).rejects.toMatchObject({ name: 'MALFORMED' });
    bridge.set({ kind: 'none' });
    await expect(api.ready()).resolves.toBeNull();
    await expect(api.pay({ product: 'why', price: '0.03', currency: 'EUR' })).rejects.toMatchObject({ name: 'UNAVAILABLE' });
  });
});
