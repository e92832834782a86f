import type { WalletPlatform } from '@obol/protocol/customerAgent/platform';
import { type KeyOf, type StoreName, type ValueOf, type WalletDatabase, readStore, writeStore } from '@obol/protocol/walletDatabase';

/** The wallet's platform in Node: no windows; `onPrompt` plays the shopper. */
export function fakePlatform(onPrompt?: (promptId: string) => void): WalletPlatform & { opened: string[] } {
  const opened: string[] = [];
  let nextWindow = 1;
  return {
    opened,
    now: () => Date.now(),
    async showPrompt(promptId) {
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

/** One record, read as the tests check it. */
export function getRecord<N extends StoreName>(db: WalletDatabase, store: N, key: KeyOf<N>): Promise<ValueOf<N> | undefined> {
  return readStore(db, store, (s) => s.get(key));
}

/** One record, written as a test sets the scene. */
export function putRecord<N extends StoreName>(db: WalletDatabase, store: N, value: ValueOf<N>): Promise<void> {
  return writeStore(db, store, (s) => s.put(value));
}
