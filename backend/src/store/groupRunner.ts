/**
 * Group commit without a timer: items that arrive while a group is being handled wait, and the
 * next group takes all of them (up to `max`). Under no load a group is the one item that came (no
 * added wait); under load each group carries what arrived during the one before, so a fixed cost
 * per group — a transaction's BEGIN and COMMIT, a signed message, an HTTP request — is shared by
 * as many items as are waiting. Up to `parallel` groups run at once.
 *
 * `handle` answers per item, in order: a value, or that item's own error. If it throws, every
 * item of that group gets the error.
 */
export type ItemResult<R> = { ok: R } | { error: unknown };

export class GroupRunner<I, R> {
  private readonly waiting: { item: I; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;

  constructor(
    private readonly handle: (items: I[]) => Promise<ItemResult<R>[]>,
    private readonly options: { max: number; parallel?: number },
  ) {}

  run(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      // Started on the next turn of the event loop, so the callers of this turn share a group.
      if (this.running < (this.options.parallel ?? 1)) {
        this.running++;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0, this.options.max);
        try {
          const results = await this.handle(group.map((g) => g.item));
          for (const [i, g] of group.entries()) {
            const r = results[i];
            if (r && 'ok' in r) g.resolve(r.ok);
            else g.reject(r ? r.error : new Error('a grouped item got no result'));
          }
        } catch (e) {
          for (const g of group) g.reject(e);
        }
      }
    } finally {
      this.running--;
    }
  }
}
