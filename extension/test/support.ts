import type { Platform } from '../src/background/platform.ts';

/** The wallet's platform in Node: no windows; `onPrompt` plays the shopper. */
export function fakePlatform(onPrompt?: (promptId: string) => void): Platform & { opened: string[] } {
  const opened: string[] = [];
  let nextWindow = 1;
  return {
    opened,
    now: () => Date.now(),
    async openPrompt(promptId) {
      opened.push(promptId);
      queueMicrotask(() => onPrompt?.(promptId));
      return nextWindow++;
    },
    async windowExists() {
      return true;
    },
    async closeWindow() {},
    notifyChanged() {},
  };
}
