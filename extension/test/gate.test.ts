import { ObolError } from '@obol/protocol/errors';
import { describe, expect, it } from 'vitest';
import { OriginGate, PromptWaiters } from '@obol/protocol/customerAgent/promptGate';

describe('one prompt per origin at a time', () => {
  it('runs the requests of one origin one after the other, others in parallel', async () => {
    const gate = new OriginGate(3);
    const order: string[] = [];
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const a = gate.run('https://a.example', async (lane) => {
      lane.setPrompting(true);
      order.push('a1 start');
      await held;
      order.push('a1 end');
    });
    const b = gate.run('https://a.example', async () => {
      order.push('a2');
    });
    const other = gate.run('https://b.example', async () => {
      order.push('b1');
    });
    await other;
    expect(order).toEqual(['a1 start', 'b1']);
    release();
    await Promise.all([a, b]);
    expect(order).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
    expect(gate.size('https://a.example')).toBe(0);
  });

  it('queues at most maxWaiting behind an open prompt; more get PROMPT_PENDING', async () => {
    const gate = new OriginGate(2);
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const prompt = gate.run('https://a.example', async (lane) => {
      lane.setPrompting(true);
      await held;
    });
    await Promise.resolve();
    const queued = [gate.run('https://a.example', async () => 'q1'), gate.run('https://a.example', async () => 'q2')];
    await expect(gate.run('https://a.example', async () => 'q3')).rejects.toMatchObject({ name: 'PROMPT_PENDING', code: 4303 });
    release();
    await prompt;
    expect(await Promise.all(queued)).toEqual(['q1', 'q2']);
  });

  it('a failing request does not stop the queue', async () => {
    const gate = new OriginGate();
    const failed = gate.run('o', async () => {
      throw new ObolError('USER_REJECTED', 'no');
    });
    await expect(failed).rejects.toBeInstanceOf(ObolError);
    expect(await gate.run('o', async () => 'next')).toBe('next');
  });

  it('wakes every waiter of a prompt once, and says when nobody waited', async () => {
    const w = new PromptWaiters();
    const one = w.wait('p');
    const two = w.wait('p');
    expect(w.settle('p', { accept: true, at: 1 })).toBe(true);
    expect(await one).toEqual({ accept: true, at: 1 });
    expect(await two).toEqual({ accept: true, at: 1 });
    expect(w.settle('p', { accept: false, at: 2 })).toBe(false);
  });
});
