/**
 * One purchase per gesture, decided where the page cannot reach: the content script's isolated
 * world. `navigator.userActivation.isActive` is the frame's real transient activation (a page
 * script cannot set it), but it stays active for seconds after a click, so on its own one click
 * would let a script buy many times. The ledger therefore also counts the trusted input events it
 * saw (listened in the isolated world; `isTrusted` is set by the browser only) and lets each
 * counted gesture be taken once: a second purchase without a new click or key press is refused.
 */
export const GESTURE_EVENTS = ['pointerdown', 'mousedown', 'keydown', 'touchend'] as const;

export class GestureLedger {
  private seen = 0;
  private used = 0;

  constructor(private readonly isActive: () => boolean) {}

  /**
   * Counts a user input event; synthetic events (dispatched by a script) do not count, nor do the
   * repeats of a key held down (one press is one gesture, however long it is held).
   */
  observe(event: { isTrusted: boolean; repeat?: boolean }): void {
    if (event.isTrusted && event.repeat !== true) this.seen += 1;
  }

  /**
   * True when the frame has transient activation from a gesture not yet spent on a purchase, and
   * spends it. Called once per payment request, when the request arrives.
   */
  take(): boolean {
    if (!this.isActive() || this.seen === this.used) return false;
    this.used = this.seen;
    return true;
  }
}

/** The browser's activation of this frame; false where the browser has no such API. */
export function frameIsActive(): boolean {
  const ua = (navigator as Navigator & { userActivation?: { isActive: boolean } }).userActivation;
  return ua?.isActive === true;
}
