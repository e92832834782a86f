import { ObolError, type ObolErrorJson } from '@obol/protocol/errors';

/**
 * One readable sentence per error (keyed by its name: plain keys, shorter in the bundle than
 * `[ErrorCodes.X]`), for shoppers. The wallet's own `message` travels on in
 * the `obol:failed` event for the page's logs, but a shopper sees only these sentences: text
 * from another party is never shown as if it were ours, and raw server errors never reach people.
 */
const SENTENCES: Partial<Record<ObolErrorJson['name'], string>> = {
  USER_REJECTED: 'You declined the payment.',
  UNAUTHORIZED: 'Your Obol wallet did not allow this site to ask for a payment.',
  UNSUPPORTED_METHOD: 'Your Obol wallet cannot make this kind of payment. Update it and try again.',
  DISCONNECTED: 'Your Obol wallet is not reachable. Reload the page and try again.',
  OVER_BUDGET: 'This would go over your budget for this site. Raise the budget in your Obol wallet to buy it.',
  NO_WALLET_ACCOUNT: 'Set up your Obol wallet first.',
  PROMPT_PENDING: 'Your Obol wallet is already asking you about a payment. Answer it first.',
  SITE_BLOCKED: 'You turned down payments on this site. Allow it again in your Obol wallet, or try again later.',
  USER_ACTIVATION_REQUIRED: 'Click the button to buy: each purchase needs its own click.',
  OPAQUE_ORIGIN: 'Payments are not possible from this frame. Open the shop’s own page to buy.',
  TOO_MANY_PROMPTS: 'Your Obol wallet has asked you several times already. Wait a minute and try again.',
  INSUFFICIENT_FUNDS: 'Not enough money in your Obol account. Top it up and try again.',
  DEPOSIT_EXHAUSTED: 'The payment could not be completed. Please try again.',
  EXCHANGE_TABLE_MISSING: 'Currency conversion is not available right now. Please try again later.',
  EXCHANGE_TABLE_EXPIRED: 'Currency conversion is out of date. Please try again later.',
  RATE_UNAVAILABLE: 'Your Obol wallet cannot convert this currency.',
  UNKNOWN_CURRENCY: 'Obol cannot take payments in this currency.',
  MERCHANT_NOT_TRUSTED: 'Your Obol wallet does not trust this shop, so nothing was paid.',
  OPERATOR_NOT_TRUSTED: 'Your Obol wallet does not trust this payment operator, so nothing was paid.',
  UNKNOWN_MERCHANT: 'Your Obol wallet does not know this shop, so nothing was paid.',
  UNKNOWN_PRODUCT: 'This shop does not sell this item any more.',
  SESSION_EXPIRED: 'Your payment session with this shop has ended. Please try again.',
  SESSION_CLOSED: 'Your payment session with this shop has ended. Please try again.',
  UNAVAILABLE: 'Payments are not available right now. Please try again later.',
  RATE_LIMITED: 'Too many tries in a short time. Wait a moment and try again.',
  TIMEOUT: 'No answer from your Obol wallet. Please try again.',
};

/** One sentence for an error; codes without their own share their family's (1xxx: the price, 2xxx: the shop's signatures). */
export function errorSentence({ code, name }: Pick<ObolErrorJson, 'code' | 'name'>): string {
  return (
    SENTENCES[name] ??
    (code >= 1000 && code < 2000
      ? 'This price is not set up correctly, so nothing was paid.'
      : code >= 2000 && code < 3000
        ? 'The shop could not be verified, so nothing was paid.'
        : 'The payment did not go through. Please try again.')
  );
}

/**
 * Any failure as the bridge's wire form `{code, name, message}`. Our own ObolErrors keep their
 * code; anything else (a bug, a thrown string, an unknown code) becomes INTERNAL.
 */
export function toErrorJson(e: unknown): ObolErrorJson {
  return (e instanceof ObolError ? e : ObolError.fromJSON(e)).toJSON();
}
