import type { BridgeParams, BridgeResults } from '@obol/protocol/bridgeWire';
import { ObolError } from '@obol/protocol/errors';
import { type Delivery, toDelivery } from './content.ts';
import type { WidgetContext } from './context.ts';
import { checkProductId, resolveMerchant } from '@obol/protocol/pageTags';
import { displayMoney, wirePrice } from './money.ts';

/** What a page gives to buy one product: the same as `<obol-buy>`'s attributes. */
export interface PayInput {
  product: string;
  price: string;
  currency: string;
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

const MAX_DESCRIPTION = 300; // the bridge's maxLength

/** Everything checked before the wallet is asked; throws ObolError (MALFORMED, UNKNOWN_CURRENCY, INVALID_AMOUNT). */
export function payParams(input: PayInput, scriptMerchant: string | null, baseUrl: string): BridgeParams<'obol_pay'> {
  const params: BridgeParams<'obol_pay'> = {
    merchant: resolveMerchant(input.merchant, scriptMerchant, baseUrl),
    productId: checkProductId(input.product),
    price: wirePrice(input.price, input.currency),
  };
  const description = input.description?.trim().slice(0, MAX_DESCRIPTION);
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
  const result = open ? await ctx.bridge.request('obol_open', { merchant: params.merchant, productId: params.productId }) : await ctx.bridge.request('obol_pay', params);
  let delivery: Delivery | null = null;
  try {
    delivery = toDelivery(result);
  } catch (e) {
    console.error('obol widget: the delivered content could not be decoded', e);
  }
  const unlocked = delivery ? deliver(ctx.doc, delivery, forId) : 0;
  const { content: _bytes, ...rest } = result;
  const detail: PaidDetail = delivery?.kind === 'text' ? { ...rest, text: delivery.text } : rest;
  return { result, detail, delivery, unlocked };
}

interface Revealer extends Element {
  reveal(d: Delivery, targeted: boolean): boolean;
}
const isRevealer = (e: Element | null): e is Revealer =>
  !!e && e.localName === 'obol-paywall' && typeof (e as Partial<Revealer>).reveal === 'function';

/** `for="id"` names one paywall; without it every paywall whose `product` matches is unlocked. */
export function deliver(doc: Document, delivery: Delivery, forId: string | null): number {
  const targets = forId ? [doc.getElementById(forId)] : Array.from(doc.querySelectorAll('obol-paywall'));
  let n = 0;
  for (const t of targets) if (isRevealer(t) && t.reveal(delivery, !!forId)) n++;
  return n;
}

export function paidSentence(price: string, unlocked: number, delivered: boolean, opened = false): string {
  const paid = opened ? 'Opened again, not charged.' : `Paid ${displayMoney(price)}.`;
  if (!delivered) return `${paid} The content could not be shown here; your Obol wallet keeps the receipt.`;
  return unlocked > 0 ? `${paid} The content is unlocked.` : `${paid} Thank you!`;
}
