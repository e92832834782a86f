import type { ObolErrorJson } from '@obol/protocol/errors';
import { type MessageKey, t } from './i18n.ts';

/**
 * The catalogue errors a shopper meets, as sentences in her language (`error_<NAME>` in
 * `_locales`). The wallet's own message is technical English: it stays available as the details
 * (`detail`) and is the text only for an error with no sentence of its own.
 */
const SENTENCES: Partial<Record<ObolErrorJson['name'], MessageKey>> = {
  USER_REJECTED: 'error_USER_REJECTED',
  DISCONNECTED: 'error_DISCONNECTED',
  OVER_BUDGET: 'error_OVER_BUDGET',
  NO_WALLET_ACCOUNT: 'error_NO_WALLET_ACCOUNT',
  SITE_BLOCKED: 'error_SITE_BLOCKED',
  INVALID_AMOUNT: 'error_INVALID_AMOUNT',
  UNKNOWN_CURRENCY: 'error_UNKNOWN_CURRENCY',
  CURRENCY_MISMATCH: 'error_CURRENCY_MISMATCH',
  CERT_EXPIRED: 'error_CERT_EXPIRED',
  CERT_UNTRUSTED: 'error_CERT_UNTRUSTED',
  CERT_WRONG_KIND: 'error_CERT_WRONG_KIND',
  MERCHANT_NOT_TRUSTED: 'error_MERCHANT_NOT_TRUSTED',
  OPERATOR_NOT_TRUSTED: 'error_OPERATOR_NOT_TRUSTED',
  INSUFFICIENT_FUNDS: 'error_INSUFFICIENT_FUNDS',
  EXCHANGE_TABLE_MISSING: 'error_EXCHANGE_TABLE_MISSING',
  EXCHANGE_TABLE_EXPIRED: 'error_EXCHANGE_TABLE_EXPIRED',
  RATE_UNAVAILABLE: 'error_RATE_UNAVAILABLE',
  SESSION_EXPIRED: 'error_SESSION_EXPIRED',
  SESSION_CLOSED: 'error_SESSION_CLOSED',
  PRODUCT_MISMATCH: 'error_PRODUCT_MISMATCH',
  UNAVAILABLE: 'error_UNAVAILABLE',
  TIMEOUT: 'error_TIMEOUT',
  INTERNAL: 'error_INTERNAL',
  RATE_LIMITED: 'error_RATE_LIMITED',
};

/** The sentence for the shopper, and the wallet's own words when they add something. */
export function errorText(error: { name: string; message: string }): string {
  const key = Object.hasOwn(SENTENCES, error.name) ? SENTENCES[error.name as ObolErrorJson['name']] : undefined;
  if (!key) return error.message;
  return t('error_withDetail', t(key), error.message);
}
