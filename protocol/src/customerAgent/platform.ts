/**
 * What the wallet needs from the browser beyond storage and HTTP: a seam, so the wallet's logic
 * runs the same in the service worker and in the Node tests (a fake platform there).
 */
export interface Platform {
  now(): number;
  /** Opens the confirmation window for a prompt; its window id, if the browser has one. */
  openPrompt(promptId: string): Promise<number | undefined>;
  /** Does the window still exist? (after a restart of the service worker) */
  windowExists(windowId: number): Promise<boolean>;
  closeWindow(windowId: number): Promise<void>;
  /** Tells open extension pages that something changed (they refetch). */
  notifyChanged(): void;
}
