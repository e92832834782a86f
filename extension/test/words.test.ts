import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { digitsIn, moneyIn, whenIn } from '../src/ui/shared/format.ts';
import { t } from '../src/ui/shared/i18n.ts';

const locales = new URL('../public/_locales/', import.meta.url);
const messages = (lang: string) => JSON.parse(readFileSync(new URL(`${lang}/messages.json`, locales), 'utf8')) as Record<string, { message: string }>;
const placeholders = (text: string) => [...text.matchAll(/\$(\d)/g)].map((m) => m[1]).sort();

describe('the shopper’s amounts', () => {
  it('keeps every minor unit, in the locale’s digits, with the currency', () => {
    expect(moneyIn('SEK:0.35', 'sv-SE')).toBe('0,35\u00a0SEK');
    expect(moneyIn('SEK:0.35', 'en-US')).toBe('SEK\u00a00.35');
    expect(moneyIn('EUR:1234567.05', 'sv-SE')).toBe('1\u00a0234\u00a0567,05\u00a0EUR');
    // Past a double's precision: a float would print ...992.00 here.
    expect(moneyIn('SEK:92233720368547758.07', 'en-US')).toBe('SEK\u00a092,233,720,368,547,758.07');
    expect(moneyIn('EUR:-0.05', 'en-US')).toBe('-EUR\u00a00.05');
    expect(moneyIn('SEK:20', 'sv-SE')).toBe('20,00\u00a0SEK');
  });
  it('puts the locale’s decimal mark in the input fields', () => {
    expect(digitsIn('SEK:1.70', 'sv-SE')).toBe('1,70');
    expect(digitsIn('SEK:1.70', 'en-US')).toBe('1.70');
  });
  it('shows what it cannot read as it is, and nothing as a dash', () => {
    expect(moneyIn('not money', 'sv-SE')).toBe('not money');
    expect(moneyIn(undefined, 'sv-SE')).toBe('—');
  });
  it('writes dates the locale’s way', () => {
    const ms = Date.UTC(2026, 11, 1, 12, 0);
    expect(whenIn(ms, 'sv-SE')).toMatch(/1 dec\. 2026/);
    expect(whenIn(ms, 'en-US')).toMatch(/Dec 1, 2026/);
  });
});

describe('the extension’s _locales', () => {
  const english = messages('en');
  const languages = readdirSync(locales);
  it('are English and Swedish', () => {
    expect(languages.sort()).toEqual(['en', 'sv']);
  });
  for (const lang of languages.filter((l) => l !== 'en')) {
    it(`${lang} has every English message, with the same placeholders`, () => {
      const other = messages(lang);
      expect(Object.keys(other).sort()).toEqual(Object.keys(english).sort());
      for (const [key, { message }] of Object.entries(english)) {
        expect(placeholders(other[key]?.message ?? ''), key).toEqual(placeholders(message));
        expect(other[key]?.message, key).not.toBe('');
      }
    });
  }
  it('t() fills the placeholders in order (English outside the browser)', () => {
    expect(t('confirm_pay', 'SEK 0.34')).toBe('Pay SEK 0.34');
    expect(t('history_spentOf', 'a', 'b')).toBe('spent a of b');
  });
});
