/**
 * The one back-off of Obol: how long to wait before trying again after the n-th failure of
 * something that will be retried (a billing record, a merchant record, clearing information, a
 * settlement, a database transaction that lost a race, a wallet's resend). Pure: the caller adds
 * the wait to its own clock.
 */
export interface BackoffOptions {
  /** Wait after the first failure. Default 1 s. */
  baseMs?: number;
  /** Growth per further failure. Default 2. */
  factor?: number;
  /** Longest wait. Default 1 h. */
  capMs?: number;
  /**
   * Spread: the wait is scaled by a factor in [1 - jitter, 1 + jitter], so things that failed
   * together (a receiver was down) do not all come back in the same instant. Default 0.2.
   */
  jitter?: number;
  /** Uniform in [0, 1); 0.5 means no jitter. Default Math.random. */
  random?: () => number;
}

/** The wait before the next try after the `failures`-th failed attempt (1, 2, …). */
export function backoffDelay(failures: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 1000;
  const factor = options.factor ?? 2;
  const cap = options.capMs ?? 3_600_000;
  const jitter = options.jitter ?? 0.2;
  const random = options.random ?? Math.random;
  // factor ** n overflows to Infinity after very many failures; min() absorbs it.
  const raw = Math.min(cap, base * factor ** Math.max(0, failures - 1));
  const spread = 1 + jitter * (2 * random() - 1);
  return Math.round(Math.min(cap, Math.max(0, raw * spread)));
}
