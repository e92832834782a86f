import type { WalletPlatform } from '@obol/protocol/customerAgent/platform';
import browser from 'webextension-polyfill';
import { CHANGED_MESSAGE } from '../shared/messages.ts';

const PROMPT_WIDTH = 420;
const PROMPT_HEIGHT = 640;

/**
 * The wallet core's platform in Chromium (and any browser webextension-polyfill covers): a prompt
 * that needs the shopper is shown as a confirmation window. No permission needed.
 */
export const browserPlatform: WalletPlatform = {
  now: () => Date.now(),
  async showPrompt(promptId) {
    const url = browser.runtime.getURL(`confirm.html?prompt=${encodeURIComponent(promptId)}`);
    const created = await browser.windows.create({ url, type: 'popup', width: PROMPT_WIDTH, height: PROMPT_HEIGHT, focused: true });
    return created.id;
  },
  async windowExists(windowId) {
    try {
      await browser.windows.get(windowId);
      return true;
    } catch {
      return false;
    }
  },
  async closeWindow(windowId) {
    await browser.windows.remove(windowId).catch(() => undefined);
  },
  async showTopUp() {
    // The wallet's own page, with the top-up the waiting purchase needs (overview).
    const url = browser.runtime.getURL('popup.html?topup=1');
    await browser.windows.create({ url, type: 'popup', width: PROMPT_WIDTH, height: PROMPT_HEIGHT, focused: true }).catch(() => undefined);
  },
  notifyChanged() {
    // Nobody listening (no popup open) is the usual case, not an error.
    browser.runtime.sendMessage({ type: CHANGED_MESSAGE }).catch(() => undefined);
  },
};
