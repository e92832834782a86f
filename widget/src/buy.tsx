import type { BridgeParams } from '@obol/protocol/bridgeWire';
import type { ObolErrorJson } from '@obol/protocol/errors';
import { render } from 'preact';
import type { WalletStatus } from './bridgeClient.ts';
import { context } from './context.ts';
import { errorSentence, toErrorJson } from './errorText.ts';
import { displayMoney } from './money.ts';
import { type PaidDetail, paidSentence, pay, payParams } from './payments.ts';
import { type Conversion, conversionFor } from './quotes.ts';
import { safeHref } from './safeHtml.ts';
import { shadowMount } from './styles.ts';

/** One button's purchase, as a discriminated union (the wallet's presence is kept apart). */
export type BuyState =
  | { kind: 'idle' }
  /** Bought here before (the wallet said so): the click opens it again, without a charge. */
  | { kind: 'owned' }
  | { kind: 'paying' }
  | { kind: 'paid'; sentence: string }
  | { kind: 'failed'; error: ObolErrorJson; sentence: string };

export type BuyConfig = { ok: true; params: BridgeParams<'obol_pay'>; display: string; name: string } | { ok: false; error: ObolErrorJson };

export interface BuyViewProps {
  config: BuyConfig;
  wallet: WalletStatus['kind'];
  state: BuyState;
  conversion: Conversion;
  walletHelp: string | null;
  onPay(): void;
}

/** The button's whole look, a pure function of its state. */
export function BuyView({ config, wallet, state, conversion, walletHelp, onPay }: BuyViewProps) {
  if (!config.ok) {
    return (
      <p class="note" part="note">
        This price is not set up correctly.
      </p>
    );
  }
  const { kind } = state;
  const live = (
    <p class={`status ${kind}`} part="status" role="status" aria-live="polite">
      {kind === 'paying' ? 'Waiting for your Obol wallet…' : 'sentence' in state ? state.sentence : ''}
    </p>
  );
  const price = (
    <span class="price" part="price">
      {config.display}
    </span>
  );
  if (wallet === 'none' && kind !== 'paid') {
    const help = safeHref(walletHelp);
    return [
      <p class="fallback" part="fallback">
        {price}
        <strong>Obol wallet needed</strong>
        {help ? [' (', <a href={help} part="help-link">how to get it</a>, ')'] : ': add the Obol wallet to your browser to buy this with one click.'}
      </p>,
      live,
    ];
  }
  const paid = kind === 'paid';
  const done = paid || kind === 'owned';
  return [
    <button
      type="button"
      part="button"
      class={done ? 'buy paid' : 'buy'}
      aria-busy={`${kind === 'paying'}`}
      // aria-disabled, not `disabled`: the button keeps keyboard focus while the wallet asks.
      aria-disabled={`${kind === 'paying' || paid}`}
      onClick={onPay}
    >
      {done
        ? [<span aria-hidden="true">✓ </span>, paid ? 'Paid' : 'Bought: open', <span class="sr">{paid ? ' for ' : ' '}{config.name}</span>]
        : [
            <span class="sr">Buy {config.name} for </span>,
            price,
            conversion.kind === 'converted' ? (
              <span class="converted" part="converted">
                <span aria-hidden="true">≈ {conversion.text}</span>
                <span class="sr">, about {conversion.text}</span>
              </span>
            ) : conversion.kind === 'stale' ? (
              <span class="converted" part="converted">
                (conversion out of date)
              </span>
            ) : null,
          ]}
    </button>,
    live,
  ];
}

const WHAT_IS_BOUGHT = ['product', 'price', 'currency', 'merchant'];
/** Refusals that mean the page is set up wrong (see buy()). */
const SETUP_MISTAKES = ['UNKNOWN_PRODUCT', 'PRODUCT_MISMATCH', 'CURRENCY_MISMATCH', 'UNKNOWN_MERCHANT', 'MERCHANT_NOT_TRUSTED'];

/**
 * `<obol-buy product price currency description [merchant] [for] [wallet-help]>`.
 * Events (bubbling, composed): `obol:paid`, `obol:opened` (bought before, opened again without a
 * charge), `obol:failed`, `obol:no-wallet`.
 */
export class ObolBuy extends HTMLElement {
  static observedAttributes = ['product', 'price', 'currency', 'description', 'merchant', 'for', 'wallet-help'];

  #mount: HTMLElement | null = null;
  #state: BuyState = { kind: 'idle' };
  #wallet: WalletStatus['kind'] = 'looking';
  #conversion: Conversion = { kind: 'none' };
  /** The price last quoted, and the merchant and product last asked about (`obol_purchased`). */
  #quotedFor = '';
  #ownedFor = '';
  /** The wallet said "bought": a click opens (also after a failed open), never buys a second time. */
  #bought = false;
  #unsubscribe: (() => void) | null = null;
  #toldNoWallet = false;
  /** What was logged for the page's author, each once. */
  readonly #told = new Set<string>();

  connectedCallback(): void {
    this.#mount = shadowMount(this);
    this.#unsubscribe?.();
    const { bridge, quotes } = context();
    const offWallet = bridge.subscribe((status) => {
      this.#wallet = status.kind;
      if (status.kind === 'none' && !this.#toldNoWallet) {
        this.#toldNoWallet = true;
        queueMicrotask(() => this.#fire('obol:no-wallet', { product: this.getAttribute('product') }));
      }
      this.#update();
    });
    const offQuotes = quotes.subscribe(() => {
      this.#quotedFor = ''; // ask again: the wallet may tell an approved site its conversions now
      this.#update();
    });
    this.#unsubscribe = () => {
      offWallet();
      offQuotes();
    };
  }

  disconnectedCallback(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  attributeChangedCallback(name: string): void {
    if (!this.#mount) return; // the first render happens on connect
    // Another product or price is another purchase; a new description or help link is not.
    if (WHAT_IS_BOUGHT.includes(name) && this.#state.kind !== 'paying') {
      this.#state = { kind: 'idle' };
      this.#bought = false;
    }
    this.#update();
  }

  /** What the attributes say, checked; the merchant resolves against the page's URL. */
  config(): BuyConfig {
    const ctx = context();
    try {
      const attr = (name: string) => this.getAttribute(name);
      const params = payParams(
        { product: attr('product'), price: attr('price'), currency: attr('currency'), description: attr('description'), merchant: attr('merchant') },
        ctx.merchant,
        ctx.doc.baseURI,
      );
      return { ok: true, params, display: displayMoney(params.price), name: params.description ?? params.productId };
    } catch (e) {
      return { ok: false, error: toErrorJson(e) };
    }
  }

  #fire(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true, detail }));
  }

  /** Tells the page's author (not the shopper) what is wrong with this element, once per reason. */
  #tell(message: string): void {
    if (this.#told.has(message)) return;
    this.#told.add(message);
    console.error(`obol widget: <obol-buy product="${this.getAttribute('product') ?? ''}">: ${message}`);
  }

  #update(): void {
    if (!this.#mount) return;
    const config = this.config();
    const ctx = context();
    if (!config.ok) this.#tell(config.error.message);
    else if (this.#wallet === 'found') {
      const { price, merchant, productId } = config.params;
      if (this.#quotedFor !== price) {
        this.#quotedFor = price;
        this.#conversion = { kind: 'none' };
        void ctx.quotes.get(price).then((q) => {
          if (this.#quotedFor !== price) return;
          this.#conversion = conversionFor(price, q);
          this.#update();
        });
      }
      // Bought here before? Then the button offers to open it (asked again when the product changes).
      const key = `${merchant} ${productId}`;
      if (this.#ownedFor !== key) {
        this.#ownedFor = key;
        void ctx.owned.has(merchant, productId).then((owned) => {
          if (owned && this.#ownedFor === key && this.#state.kind === 'idle') {
            this.#bought = true;
            this.#state = { kind: 'owned' };
            this.#update();
          }
        });
      }
    }
    render(
      <BuyView
        config={config}
        wallet={this.#wallet}
        state={this.#state}
        conversion={config.ok && this.#quotedFor === config.params.price ? this.#conversion : { kind: 'none' }}
        walletHelp={this.getAttribute('wallet-help') ?? ctx.walletHelp}
        onPay={() => void this.buy()}
      />,
      this.#mount,
    );
  }

  #show(state: BuyState): void {
    this.#state = state;
    this.#update();
  }

  /** The click: one payment at a time, none after it was paid; what was bought before opens again. */
  async buy(): Promise<void> {
    const { kind } = this.#state;
    if (kind === 'paying' || kind === 'paid') return;
    const open = this.#bought;
    const config = this.config();
    const ctx = context();
    try {
      if (!config.ok) throw config.error;
      this.#show({ kind: 'paying' });
      // No wallet after all: the honest fallback shows, nothing was asked or paid.
      if (!(await ctx.bridge.ready())) return this.#show({ kind: 'idle' });
      const paid = await pay(ctx, config.params, this.getAttribute('for'), open);
      this.#show({ kind: 'paid', sentence: paidSentence(config.params.price, paid.unlocked, paid.delivery !== null, open) });
      this.#fire(open ? 'obol:opened' : 'obol:paid', paid.detail satisfies PaidDetail);
      ctx.quotes.refresh(); // the purchase may have approved the site: conversions may be told now
    } catch (e) {
      const error = toErrorJson(e);
      // A setup mistake of the page (a product or price the shop does not sell, a wrong module
      // address): the shopper reads a plain sentence, the page's author the exact reason, once.
      if (SETUP_MISTAKES.includes(error.name)) this.#tell(error.message);
      this.#show({ kind: 'failed', error, sentence: errorSentence(error) });
      this.#fire('obol:failed', error);
    }
  }
}
