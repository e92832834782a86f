import english from '../../../public/_locales/en/messages.json';

/**
 * Every text the wallet shows goes through `t`, so it comes from the extension's `_locales`
 * (English and Swedish today; Chrome picks the browser's language). Keys are the message names of
 * `public/_locales/<lang>/messages.json`; `$1`… placeholders take the substitutions in order.
 * Outside an extension page (unit tests) the English file answers, so a missing key is still seen.
 */
export type MessageKey = keyof typeof english;

/**
 * The browser's i18n API, read from `chrome` (Chromium and Firefox both have it) rather than
 * through webextension-polyfill, whose import throws outside an extension: so these helpers run
 * in unit tests too, with the English file answering.
 */
interface BrowserI18n {
  getMessage(name: string, substitutions?: string[]): string;
  getUILanguage(): string;
}
const browserI18n = (globalThis as { chrome?: { i18n?: BrowserI18n } }).chrome?.i18n;

export function t(key: MessageKey, ...substitutions: Array<string | number>): string {
  const subs = substitutions.map(String);
  let text = '';
  try {
    text = browserI18n?.getMessage(key, subs) ?? '';
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
    return browserI18n?.getUILanguage() || navigator.language;
  } catch {
    return typeof navigator === 'undefined' ? 'en' : navigator.language;
  }
}

/** The page's language and title from `_locales` (the HTML files say "en" before the script runs). */
export function localizeDocument(titleKey: MessageKey): void {
  document.documentElement.lang = uiLocale();
  document.title = t(titleKey);
}
