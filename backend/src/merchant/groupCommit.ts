/**
 * Group commit of the merchant's usual-case writes: the conditional writes of concurrent purchases
 * (orders, accepts) leave as one multi-row statement instead of one statement each, so the
 * database parses, plans, commits and answers once for several purchases, and the shop's process
 * writes to its socket once.
 *
 * Nothing waits to form a group: a write leaves at once while fewer than `maxInFlight` statements
 * are in flight (one shopper sees no added latency); only writes arriving while the database is
 * busy wait for the next statement, which takes them together. Each caller is answered only after
 * the statement carrying its write has committed (a statement is atomic: all of its rows or none),
 * with its own row's outcome. Two writes of one session never share a statement (they are judged
 * against the same session row; the second waits for the next one).
 *
 * When a statement of several writes fails as a whole (an acceptId used again, a serialization
 * failure), nothing of it was written and every write in it is answered "not written": each
 * caller then decides on its own, on the locked path, exactly as when its session had changed.
 */
export interface GroupWriterOptions {
  /** Statements in flight at once before writes wait to be grouped. */
  maxInFlight: number;
  /** Writes per statement at most. */
  maxGroup: number;
}

interface Waiting<I> {
  key: string;
  item: I;
  resolve(written: boolean): void;
  reject(e: unknown): void;
}

export class GroupWriter<I> {
  private waiting: Waiting<I>[] = [];
  private inFlight = 0;

  /**
   * `write` sends the items as one statement and answers, per item in order, whether it was
   * written. A single item's error propagates to its caller as it is.
   */
  constructor(
    private readonly write: (items: readonly I[]) => Promise<boolean[]>,
    private readonly options: GroupWriterOptions,
  ) {}

  /** Writes `item` (of session `key`); true once committed, false when it was not written. */
  submit(key: string, item: I): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ key, item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const group: Waiting<I>[] = [];
      const keys = new Set<string>();
      const later: Waiting<I>[] = [];
      for (const w of this.waiting) {
        if (group.length < this.options.maxGroup && !keys.has(w.key)) {
          group.push(w);
          keys.add(w.key);
        } else later.push(w);
      }
      this.waiting = later;
      this.inFlight++;
      this.write(group.map((w) => w.item))
        .then(
          (written) => {
            for (const [i, w] of group.entries()) w.resolve(written[i] === true);
          },
          (e: unknown) => {
            if (group.length === 1) group[0]!.reject(e);
            else for (const w of group) w.resolve(false);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
