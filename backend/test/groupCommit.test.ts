// The merchant's group commit (src/merchant/groupCommit.ts) on its own: a write leaves at once when
// the database is not busy, writes arriving while it is go together (one per session), and a group
// that fails as a whole answers each write "not written" so each is decided again on its own.
import { describe, expect, it } from 'vitest';
import { GroupWriter } from '../src/merchant/groupCommit.ts';

interface Call {
  items: readonly string[];
  finish(written: boolean[] | Error): void;
}

function recording() {
  const calls: Call[] = [];
  const write = (items: readonly string[]) =>
    new Promise<boolean[]>((resolve, reject) => calls.push({ items, finish: (r) => (r instanceof Error ? reject(r) : resolve(r)) }));
  return { calls, write };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('GroupWriter', () => {
  it('sends a write at once while fewer statements than maxInFlight are in flight', async () => {
    const { calls, write } = recording();
    const w = new GroupWriter(write, { maxInFlight: 2, maxGroup: 10 });
    const a = w.submit('s1', 'a');
    const b = w.submit('s2', 'b');
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b']]);
    calls[0]!.finish([true]);
    calls[1]!.finish([false]);
    expect(await a).toBe(true);
    expect(await b).toBe(false);
  });

  it('groups the writes that arrive while the database is busy, never two of one session in one statement', async () => {
    const { calls, write } = recording();
    const w = new GroupWriter(write, { maxInFlight: 1, maxGroup: 3 });
    const first = w.submit('s1', 'a1');
    const waiting = [w.submit('s2', 'b'), w.submit('s1', 'a2'), w.submit('s1', 'a3'), w.submit('s3', 'c'), w.submit('s4', 'd')];
    expect(calls).toHaveLength(1);
    calls[0]!.finish([true]);
    expect(await first).toBe(true);
    await tick();
    // s1's third write waits for the next statement; at most maxGroup per statement, in arrival order.
    expect(calls[1]!.items).toEqual(['b', 'a2', 'c']);
    calls[1]!.finish([true, false, true]);
    await tick();
    expect(calls[2]!.items).toEqual(['a3', 'd']);
    calls[2]!.finish([true, true]);
    expect(await Promise.all(waiting)).toEqual([true, false, true, true, true]);
  });

  it('a group that fails as a whole answers every write "not written"; a single write gets its error', async () => {
    const { calls, write } = recording();
    const w = new GroupWriter(write, { maxInFlight: 1, maxGroup: 10 });
    const alone = w.submit('s1', 'a');
    const grouped = [w.submit('s2', 'b'), w.submit('s3', 'c')];
    calls[0]!.finish(new Error('unique violation'));
    await expect(alone).rejects.toThrow('unique violation');
    await tick();
    expect(calls[1]!.items).toEqual(['b', 'c']);
    calls[1]!.finish(new Error('unique violation'));
    expect(await Promise.all(grouped)).toEqual([false, false]);
  });
});
