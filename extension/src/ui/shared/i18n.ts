import browser from 'webextension-polyfill';
import english from '../../../public/_locales/en/messages.json';

/**
 * Every text the wallet shows goes through `t`, so it comes from the extension's `_locales`
 * (English and Swedish today; Chrome picks the browser's language). Keys are the message names of
 * `public/_locales/<lang>/messages.json`; `$1`… placeholders take the substitutions in order.
 * Outside an extension page (unit tests) the English file answers, so a missing key is still seen.
 */
export type MessageKey = keyof typeof english;

export function t(key: MessageKey, ...substitutions: Array<string | number>): string {
  const subs = substitutions.map(String);
  let text = '';
  try {
    text = browser.i18n.getMessage(key, subs);
  } catch {
    text = '';
  }
  if (text) return text;
  const entry = english[key] as { message: string } | undefined;
  if (!entry) return key;
  return entry.message.replace(/\$(\d)/g, (_, n: string) => subs[Number(n) - 1] ?? '');
}

/** The shopper's locale for numbers and dates: the browser's UI language. */
export function uiLocale(): string {
  try {
    return browser.i18n.getUILanguage() || navigator.language;
  } catch {
    return typeof navigator === 'undefined' ? 'en' : navigator.language;
  }
}
