import type { BridgeParams, BridgeResults } from '@obol/protocol/bridgeWire';
import { ObolError } from '@obol/protocol/errors';
import { checkProductId, resolveMerchant } from '@obol/protocol/pageTags';
import { type Delivery, toDelivery } from './content.ts';
import type { WidgetContext } from './context.ts';
import { displayMoney, wirePrice } from './money.ts';

/** What a page gives to buy one product: the same as `<obol-buy>`'s attributes. */
export interface PayInput {
  product: string | null;
  price: string | null;
  currency: string | null;
  description?: string | null;
  merchant?: string | null;
}

/** The `obol:paid` detail: the wallet's result without the content bytes, plus `text` for text content. */
export type PaidDetail = Omit<BridgeResults['obol_pay'], 'content'> & { text?: string };

export interface Paid {
  result: BridgeResults['obol_pay'];
  detail: PaidDetail;
  /** null when the content arrived but could not be decoded (it was still paid for). */
  delivery: Delivery | null;
  /** How many paywalls on the page now show the content. */
  unlocked: number;
}

/** A page script may pass numbers (`price: 0.03`); attributes are strings or null. */
const text = (x: unknown): string | null => (x == null ? null : String(x));

/** Everything checked before the wallet is asked; throws ObolError (MALFORMED, UNKNOWN_CURRENCY, INVALID_AMOUNT). */
export function payParams(input: PayInput, scriptMerchant: string | null, baseUrl: string): BridgeParams<'obol_pay'> {
  const params: BridgeParams<'obol_pay'> = {
    merchant: resolveMerchant(text(input.merchant), scriptMerchant, baseUrl),
    productId: checkProductId(text(input.product)),
    price: wirePrice(text(input.price), text(input.currency)),
  };
  // The bridge's maxLength is 300.
  const description = text(input.description)?.trim().slice(0, 300);
  if (description) params.description = description;
  return params;
}

export const noWallet = () => new ObolError('UNAVAILABLE', 'no Obol wallet in this browser');

/**
 * Ask the wallet to buy (or, `open`, to open again without a charge what was bought here: issue
 * 14), then hand the content to the matching paywalls. Once the wallet says
 * "paid" nothing here turns it into a failure: the shopper has paid, so content that cannot be
 * decoded is reported as paid with no delivery (the wallet keeps the receipt).
 */
export async function pay(ctx: WidgetContext, params: BridgeParams<'obol_pay'>, forId: string | null, open = false): Promise<Paid> {
  if (!(await ctx.bridge.ready())) throw noWallet();
  const { merchant, productId } = params;
  const result = await (open ? ctx.bridge.request('obol_open', { merchant, productId }) : ctx.bridge.request('obol_pay', params));
  let delivery: Delivery | null = null;
  let unlocked = 0;
  try {
    delivery = toDelivery(result);
    // `for="id"` names one paywall; without it every paywall whose `product` matches is unlocked.
    for (const paywall of forId ? [ctx.doc.getElementById(forId)] : ctx.doc.querySelectorAll('obol-paywall')) {
      if (paywall?.localName === 'obol-paywall' && (paywall as Partial<Revealer>).reveal?.(delivery, !!forId)) unlocked++;
    }
  } catch (e) {
    console.error('obol widget: the delivered content could not be shown', e);
  }
  const { content: _bytes, ...detail }: PaidDetail & { content: string } = result;
  if (delivery?.kind === 'text') detail.text = delivery.text;
  return { result, detail, delivery, unlocked };
}

interface Revealer extends Element {
  reveal(d: Delivery, targeted: boolean): boolean;
}

export function paidSentence(price: string, unlocked: number, delivered: boolean, opened = false): string {
  const paid = opened ? 'Opened again, not charged.' : `Paid ${displayMoney(price)}.`;
  if (!delivered) return `${paid} The content could not be shown here; your Obol wallet keeps the receipt.`;
  return `${paid} ${unlocked > 0 ? 'The content is unlocked.' : 'Thank you!'}`;
}
