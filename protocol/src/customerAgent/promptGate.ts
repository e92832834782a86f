import { ObolError } from '../errors.ts';
import type { PromptRecord } from '../walletStore.ts';

/**
 * One prompt per origin at a time. Every payment of an origin passes its authorisation step
 * (reserve, or ask) through that origin's FIFO gate; payments that fit the budget pass in one
 * database transaction, and one that needs the shopper holds the gate while the confirmation
 * window is open. Requests arriving meanwhile queue behind it and are decided afresh when it is
 * their turn, under whatever the shopper just chose (a new budget lets them through; a rejection
 * blocks the page). At most `maxWaiting` may queue behind an open prompt; more are refused at once
 * with PROMPT_PENDING, so a page cannot pile up windows.
 */
export class OriginGate {
  private readonly lanes = new Map<string, { tail: Promise<unknown>; size: number; prompting: boolean }>();

  constructor(private readonly maxWaiting = 3) {}

  run<T>(origin: string, fn: (lane: { setPrompting(on: boolean): void }) => Promise<T>): Promise<T> {
    let lane = this.lanes.get(origin);
    if (!lane) {
      lane = { tail: Promise.resolve(), size: 0, prompting: false };
      this.lanes.set(origin, lane);
    }
    if (lane.prompting && lane.size > this.maxWaiting) {
      return Promise.reject(new ObolError('PROMPT_PENDING', 'the wallet is already asking about this site; answer that first'));
    }
    const l = lane;
    l.size += 1;
    const handle = {
      setPrompting: (on: boolean) => {
        l.prompting = on;
      },
    };
    const run = l.tail.then(() => fn(handle));
    l.tail = run
      .catch(() => undefined)
      .finally(() => {
        l.prompting = false;
        l.size -= 1;
        if (l.size === 0 && this.lanes.get(origin) === l) this.lanes.delete(origin);
      });
    return run;
  }

  /** Requests of `origin` inside the gate now (running or waiting). */
  size(origin: string): number {
    return this.lanes.get(origin)?.size ?? 0;
  }
}

export type Decision = NonNullable<PromptRecord['decision']>;

/**
 * Who is waiting for which prompt, in this life of the wallet (a service worker's, a process's). The
 * decision itself is in the wallet's database (the prompt record); this only wakes the waiter.
 */
export class PromptWaiters {
  private readonly waiters = new Map<string, Array<(d: Decision) => void>>();

  wait(id: string): Promise<Decision> {
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }

  /** Wakes the waiters of `id`; false when nobody in this life waits for it. */
  settle(id: string, decision: Decision): boolean {
    const list = this.waiters.get(id);
    this.waiters.delete(id);
    for (const resolve of list ?? []) resolve(decision);
    return (list?.length ?? 0) > 0;
  }

  has(id: string): boolean {
    return this.waiters.has(id);
  }
}
