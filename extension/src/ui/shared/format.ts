import { exponentOf, formatAmount, parseAmount } from '@obol/protocol/money';
import { t, uiLocale } from './i18n.ts';

/**
 * Amounts and dates as the shopper reads them: in her browser's locale, every amount with its
 * currency. Amounts are formatted from their exact decimal string (Intl.NumberFormat takes a
 * string as an exact decimal), so no digit goes through a float: "SEK:0.35" is 0.35 SEK, "0,35 SEK"
 * in Swedish, never 0.34999….
 */

/** A locale Intl accepts (an unknown one falls back to English rather than throwing). */
function locale(chosen?: string): string {
  const wanted = chosen ?? uiLocale();
  try {
    return Intl.NumberFormat.supportedLocalesOf([wanted])[0] ?? 'en';
  } catch {
    return 'en';
  }
}

/** The exact decimal of an amount, "-0.05": digits from the minor units, never via a float. */
function decimalOf(wire: string): { currency: string; decimal: string; exponent: number } {
  const a = parseAmount(wire);
  const [, decimal = '0'] = formatAmount(a).split(':');
  return { currency: a.currency, decimal, exponent: exponentOf(a.currency) };
}

/** "SEK:0.34" → "0,34 SEK" (sv) or "SEK 0.34" (en): the locale's digits and order, the currency's ISO code, every minor unit shown. */
export function moneyIn(wire: string | undefined, chosenLocale?: string): string {
  if (!wire) return '—';
  try {
    const { currency, decimal, exponent } = decimalOf(wire);
    const format = new Intl.NumberFormat(locale(chosenLocale), {
      style: 'currency',
      currency,
      currencyDisplay: 'code',
      minimumFractionDigits: exponent,
      maximumFractionDigits: exponent,
    });
    // A string is an exact decimal to Intl (ES2023 Intl.NumberFormat v3); the cast only tells TypeScript's older lib so.
    return format.format(decimal as unknown as number);
  } catch {
    return wire;
  }
}

/** An amount for the shopper, in her locale. */
export function money(wire: string | undefined): string {
  return moneyIn(wire);
}

/**
 * Digits only, for an input field, with the locale's decimal mark: "SEK:20.00" → "20.00" in
 * English, "20,00" in Swedish (the wallet reads either mark back: parseDecimal).
 */
export function digitsIn(wire: string, chosenLocale?: string): string {
  const plain = wire.includes(':') ? (wire.split(':')[1] ?? '') : wire;
  const mark = new Intl.NumberFormat(locale(chosenLocale)).formatToParts(1.5).find((p) => p.type === 'decimal')?.value ?? '.';
  return mark === ',' ? plain.replace('.', ',') : plain;
}

export function digits(wire: string): string {
  return digitsIn(wire);
}

export function currencyOf(wire: string): string {
  return wire.split(':')[0] ?? '';
}

export function timeLeft(expiresAt: number | undefined, now: number): string {
  if (expiresAt === undefined) return '—';
  const s = Math.max(0, Math.round((expiresAt - now) / 1000));
  if (s === 0) return t('time_expired');
  const m = Math.floor(s / 60);
  return m > 0 ? t('time_minutesSeconds', m, s % 60) : t('time_seconds', s);
}

/** A moment in the shopper's locale: date and time of day. */
export function whenIn(ms: number | undefined, chosenLocale?: string): string {
  if (ms === undefined) return '—';
  return new Intl.DateTimeFormat(locale(chosenLocale), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(ms));
}

export function when(ms: number | undefined): string {
  return whenIn(ms);
}

export function download(filename: string, data: unknown): void {
  downloadBlob(filename, new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
}

/** Offers bytes as a file with its name (a delivered document is a file, not text on the page). */
export function downloadBlob(filename: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function decodeBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function decodeText(base64url: string): string {
  return new TextDecoder().decode(decodeBytes(base64url));
}
