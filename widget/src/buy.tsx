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

/** The button's whole look, a pure function of its state (tested on its own). */
export function BuyView({ config, wallet, state, conversion, walletHelp, onPay }: BuyViewProps) {
  if (!config.ok) {
    return (
      <p class="note" part="note">
        This price is not set up correctly.
      </p>
    );
  }
  const status =
    state.kind === 'paying' ? 'Waiting for your Obol wallet…' : state.kind === 'paid' || state.kind === 'failed' ? state.sentence : '';
  const live = (
    <p class={state.kind === 'failed' ? 'status failed' : 'status'} part="status" role="status" aria-live="polite">
      {status}
    </p>
  );
  if (wallet === 'none' && state.kind !== 'paid') {
    const help = safeHref(walletHelp);
    return (
      <>
        <p class="fallback" part="fallback">
          <span class="price">{config.display}</span>
          <strong>Obol wallet needed</strong>
          {help ? (
            <>
              {' '}
              (
              <a href={help} part="help-link">
                how to get it
              </a>
              )
            </>
          ) : (
            ': add the Obol wallet to your browser to buy this with one click.'
          )}
        </p>
        {live}
      </>
    );
  }
  const busy = state.kind === 'paying';
  const paid = state.kind === 'paid';
  const owned = state.kind === 'owned';
  return (
    <>
      <button
        type="button"
        part="button"
        class={paid || owned ? 'buy paid' : 'buy'}
        aria-busy={busy ? 'true' : 'false'}
        // aria-disabled, not `disabled`: the button keeps keyboard focus while the wallet asks.
        aria-disabled={busy || paid ? 'true' : 'false'}
        onClick={onPay}
      >
        {paid ? (
          <>
            <span aria-hidden="true">✓ </span>Paid<span class="sr"> for {config.name}</span>
          </>
        ) : owned ? (
          <>
            <span aria-hidden="true">✓ </span>Bought: open<span class="sr"> {config.name}</span>
          </>
        ) : (
          <>
            <span class="sr">Buy {config.name} for </span>
            <span class="price" part="price">
              {config.display}
            </span>
            {conversion.kind === 'converted' ? (
              <span class="converted" part="converted">
                <span aria-hidden="true">≈ {conversion.text}</span>
                <span class="sr">, about {conversion.text}</span>
              </span>
            ) : conversion.kind === 'stale' ? (
              <span class="converted stale" part="converted">
                (conversion out of date)
              </span>
            ) : null}
          </>
        )}
      </button>
      {live}
    </>
  );
}

const WHAT_IS_BOUGHT = new Set(['product', 'price', 'currency', 'merchant']);
/** Refusals that mean the page is set up wrong (see #fail). */
const SETUP_MISTAKES = new Set(['UNKNOWN_PRODUCT', 'PRODUCT_MISMATCH', 'CURRENCY_MISMATCH', 'UNKNOWN_MERCHANT', 'MERCHANT_NOT_TRUSTED']);

function fire(el: HTMLElement, type: string, detail: unknown): void {
  el.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true, detail }));
}

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
  #quotedFor = '';
  /** The merchant and product last asked about (`obol_purchased`), and whether the wallet said bought. */
  #ownedFor = '';
  #bought = false;
  #unsubscribe: (() => void) | null = null;
  #unsubscribeQuotes: (() => void) | null = null;
  #toldNoWallet = false;
  #reportedConfig = '';
  #toldSetup = new Set<string>();

  connectedCallback(): void {
    this.#mount = shadowMount(this);
    this.#unsubscribe?.();
    this.#unsubscribe = context().bridge.subscribe((s) => this.#onWallet(s));
    this.#unsubscribeQuotes?.();
    this.#unsubscribeQuotes = context().quotes.subscribe(() => {
      this.#quotedFor = ''; // ask again: the wallet may tell an approved site its conversions now
      this.#update();
    });
  }

  disconnectedCallback(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#unsubscribeQuotes?.();
    this.#unsubscribeQuotes = null;
  }

  attributeChangedCallback(name: string): void {
    if (!this.#mount) return; // the first render happens on connect
    // Another product or price is another purchase; a new description or help link is not.
    if (WHAT_IS_BOUGHT.has(name) && this.#state.kind !== 'paying') {
      this.#state = { kind: 'idle' };
      this.#bought = false;
    }
    this.#update();
  }

  /** What the attributes say, checked; the merchant resolves against the page's URL. */
  config(): BuyConfig {
    const ctx = context();
    try {
      const params = payParams(
        {
          product: this.getAttribute('product') ?? '',
          price: this.getAttribute('price') ?? '',
          currency: this.getAttribute('currency') ?? '',
          description: this.getAttribute('description'),
          merchant: this.getAttribute('merchant'),
        },
        ctx.merchant,
        ctx.doc.baseURI,
      );
      return { ok: true, params, display: displayMoney(params.price), name: params.description ?? params.productId };
    } catch (e) {
      return { ok: false, error: toErrorJson(e) };
    }
  }

  #onWallet(status: WalletStatus): void {
    this.#wallet = status.kind;
    if (status.kind === 'none' && !this.#toldNoWallet) {
      this.#toldNoWallet = true;
      queueMicrotask(() => fire(this, 'obol:no-wallet', { product: this.getAttribute('product') }));
    }
    this.#update();
  }

  #update(): void {
    if (!this.#mount) return;
    const config = this.config();
    if (!config.ok && this.#reportedConfig !== config.error.message) {
      this.#reportedConfig = config.error.message;
      console.error(`obol widget: <obol-buy product="${this.getAttribute('product') ?? ''}">: ${config.error.message}`);
    }
    if (config.ok && this.#wallet === 'found') {
      this.#quote(config.params.price);
      this.#askOwned(config.params.merchant, config.params.productId);
    }
    render(
      <BuyView
        config={config}
        wallet={this.#wallet}
        state={this.#state}
        conversion={config.ok && this.#quotedFor === config.params.price ? this.#conversion : { kind: 'none' }}
        walletHelp={this.getAttribute('wallet-help') ?? context().walletHelp}
        onPay={() => void this.buy()}
      />,
      this.#mount,
    );
  }

  #quote(price: string): void {
    if (this.#quotedFor === price) return;
    this.#quotedFor = price;
    this.#conversion = { kind: 'none' };
    void context()
      .quotes.get(price)
      .then((q) => {
        if (this.#quotedFor !== price) return;
        this.#conversion = conversionFor(price, q);
        this.#update();
      });
  }

  /** Bought here before? Then the button offers to open it (asked again when the product changes). */
  #askOwned(merchant: string, productId: string): void {
    const key = `${merchant} ${productId}`;
    if (this.#ownedFor === key) return;
    this.#ownedFor = key;
    void context()
      .owned.has(merchant, productId)
      .then((owned) => {
        if (owned && this.#ownedFor === key && this.#state.kind === 'idle') {
          this.#bought = true;
          this.#state = { kind: 'owned' };
          this.#update();
        }
      });
  }

  /** The click: one payment at a time, none after it was paid; what was bought before opens again. */
  async buy(): Promise<void> {
    if (this.#state.kind === 'paying' || this.#state.kind === 'paid') return;
    // Once the wallet said "bought", a click only ever opens (also after a failed open): never a second purchase by accident.
    const open = this.#bought;
    const config = this.config();
    if (!config.ok) {
      this.#fail(config.error);
      return;
    }
    const ctx = context();
    this.#state = { kind: 'paying' };
    this.#update();
    if (!(await ctx.bridge.ready())) {
      // No wallet after all: the honest fallback shows (onWallet), nothing was asked or paid.
      this.#state = { kind: 'idle' };
      this.#update();
      return;
    }
    try {
      const paid = await pay(ctx, config.params, this.getAttribute('for'), open);
      this.#state = { kind: 'paid', sentence: paidSentence(config.params.price, paid.unlocked, paid.delivery !== null, open) };
      this.#update();
      fire(this, open ? 'obol:opened' : 'obol:paid', paid.detail satisfies PaidDetail);
      ctx.quotes.refresh(); // the purchase may have approved the site: conversions may be told now
    } catch (e) {
      this.#fail(toErrorJson(e));
    }
  }

  #fail(error: ObolErrorJson): void {
    // A setup mistake of the page (a product or price the shop does not sell, a wrong module
    // address): the shopper reads a plain sentence, the page's author the exact reason, once.
    if (SETUP_MISTAKES.has(error.name) && !this.#toldSetup.has(error.message)) {
      this.#toldSetup.add(error.message);
      console.error(`obol widget: <obol-buy product="${this.getAttribute('product') ?? ''}">: ${error.message}`);
    }
    this.#state = { kind: 'failed', error, sentence: errorSentence(error.code) };
    this.#update();
    fire(this, 'obol:failed', { code: error.code, name: error.name, message: error.message });
  }
}
