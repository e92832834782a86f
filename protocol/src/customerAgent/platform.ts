/**
 * What the wallet core needs from where it runs, beyond storage and HTTP: a seam, so the same core
 * runs in the extension's service worker (windows), the CLI and the Node tests (none, or a fake).
 *
 * A purchase that needs the shopper is a prompt record in state `waiting` in the wallet's database
 * (the "needs the shopper" state); the platform only shows it — a confirmation window in the
 * browser — and the shopper's answer comes back through the core's `decide` operation.
 */
export interface WalletPlatform {
  now(): number;
  /**
   * Shows a prompt that needs the shopper: the id of its window, or undefined when it cannot be
   * shown (no windows here): the purchase is then declined, never left waiting.
   */
  showPrompt(promptId: string): Promise<number | undefined>;
  /** Is that window still open? (after a restart of the service worker) */
  windowExists(windowId: number): Promise<boolean>;
  closeWindow(windowId: number): Promise<void>;
  /** Tells open wallet pages that something changed (they refetch). */
  notifyChanged(): void;
  /** Shows the shopper that a purchase waits for a top-up (the wallet's page with the top-up); optional. */
  showTopUp?(): Promise<void>;
}

/**
 * A platform with no windows (the CLI): a prompt cannot be shown, so a purchase that needs the
 * shopper is declined at once rather than waiting for an answer that cannot come.
 */
export function headlessPlatform(now: () => number = () => Date.now()): WalletPlatform {
  return {
    now,
    async showPrompt() {
      return undefined;
    },
    async windowExists() {
      return false;
    },
    async closeWindow() {},
    notifyChanged() {},
  };
}
