import { moduleOfScript } from '@obol/protocol/pageTags';
import { createApi } from './api.ts';
import { WalletBridge } from './bridgeClient.ts';
import { ObolBuy } from './buy.tsx';
import { configure } from './context.ts';
import { OwnedBook } from './owned.ts';
import { ObolPaywall } from './paywall.tsx';
import { QuoteBook } from './quotes.ts';

/**
 * The widget's one script: `<script src="https://shop.example/obol/obol-widget.js" defer>`, served
 * by the merchant module, which is then where the widget finds the merchant (or say where with
 * `data-merchant="/obol"` when the script is served from elsewhere).
 * Starts wallet discovery, defines `<obol-buy>` and `<obol-paywall>`, and sets `window.Obol`
 * (the only global it defines). Loading it twice does nothing the second time.
 */
function main(): void {
  if (customElements.get('obol-buy')) return;
  // A classic script knows its own tag; as a module (no currentScript) look for it by name.
  const script = (document.currentScript as HTMLScriptElement | null) ?? document.querySelector<HTMLScriptElement>('script[src*="obol-widget"]');
  const bridge = new WalletBridge(window);
  const ctx = {
    bridge,
    quotes: new QuoteBook(bridge),
    owned: new OwnedBook(bridge),
    merchant: script?.dataset.merchant ?? moduleOfScript(script?.src),
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
