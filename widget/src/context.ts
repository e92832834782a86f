import type { WalletBridge } from './bridgeClient.ts';
import type { OwnedBook } from './owned.ts';
import type { QuoteBook } from './quotes.ts';

/** What every element of the page shares: one bridge, one quote book, one book of what was bought, the script tag's settings. */
export interface WidgetContext {
  bridge: WalletBridge;
  quotes: QuoteBook;
  owned: OwnedBook;
  /** The script's `data-merchant`, as written (resolved at pay time against the page URL). */
  merchant: string | null;
  /** The script's `data-wallet-help`: a page that explains how to get the wallet. */
  walletHelp: string | null;
  doc: Document;
}

let current: WidgetContext | null = null;

export function configure(ctx: WidgetContext): void {
  current = ctx;
}

export function context(): WidgetContext {
  if (!current) throw new Error('obol widget: configure() was not called');
  return current;
}
