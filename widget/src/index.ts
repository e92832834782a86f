import { createApi } from './api.ts';
import { WalletBridge } from './bridgeClient.ts';
import { ObolBuy } from './buy.tsx';
import { configure } from './context.ts';
import { ObolPaywall } from './paywall.tsx';
import { QuoteBook } from './quotes.ts';

/**
 * The widget's one script: `<script src="…/obol-widget.js" data-merchant="/obol" defer>`.
 * Starts wallet discovery, defines `<obol-buy>` and `<obol-paywall>`, and sets `window.Obol`
 * (the only global it defines). Loading it twice does nothing the second time.
 */
function main(): void {
  if (customElements.get('obol-buy')) return;
  // A classic script knows its own tag; as a module (no currentScript) look for it by name.
  const script =
    document.currentScript instanceof HTMLScriptElement
      ? document.currentScript
      : document.querySelector<HTMLScriptElement>('script[src*="obol-widget"][data-merchant]');
  const bridge = new WalletBridge(window);
  const ctx = {
    bridge,
    quotes: new QuoteBook(bridge),
    merchant: script?.dataset.merchant ?? null,
    walletHelp: script?.dataset.walletHelp ?? null,
    doc: document,
  };
  configure(ctx);
  bridge.start();
  customElements.define('obol-paywall', ObolPaywall);
  customElements.define('obol-buy', ObolBuy);
  if ('Obol' in window) {
    console.warn('obol widget: window.Obol is already taken; the promise API is not installed');
  } else {
    Object.defineProperty(window, 'Obol', { value: createApi(ctx), enumerable: true });
  }
}

main();
