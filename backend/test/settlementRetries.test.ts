import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { releaseStalledInitiations } from '../src/operator/accountManager.ts';
import { settleDeadlines } from '../src/operator/acquirer.ts';
import { deposits, type OperatorLog } from '../src/operator/context.ts';
import { type TwoOperators, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * The FIG 3 timers when something goes wrong for one transaction: it fails on its own, is logged
 * with its id, and is tried again after a back-off kept in the database; every other transaction
 * settles on time. A customer operator that answers for good that it never opened the
 * transaction ends the resending of its clearing; an operator that does not answer gets it again
 * later. The clock is moved, nothing sleeps.
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('settlement retries on %s', (engine) => {
  let t: TwoOperators;
  const grace = 300_000;
  const pastDeadline = 900_000 + grace + 1_000;
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg?: string }> = [];
  const capture: OperatorLog = {
    info: (obj, msg) => lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  beforeAll(async () => {
    t = await twoOperators(engine, { clearingGraceSec: grace / 1000 });
    t.eur.ctx.log = capture;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  async function oneDeposit() {
    const shopper = t.newShopper('SEK:2.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:10.00' });
    const r = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: t.shop.url });
    // The shopper's bank knows the TransactionIdentity; the acquirer only the trade handle.
    return { shopper, transactionId: r.receipt.transactionId, handle: r.receipt.handle };
  }
  const acqRow = async (id: string) =>
    (
      await t.eur.ctx.db.query<{
        state: string;
        deposit: string;
        settle_attempts: number;
        settle_next_at: bigint | null;
        clearing_sent: boolean;
        clearing_attempts: number;
        clearing_next_at: bigint | null;
        clearing_refusal: { name: string } | null;
      }>(
        // The clearing information's delivery is an entry of the outbox (topic 'clearing').
        `SELECT a.state, a.deposit, a.settle_attempts, a.settle_next_at,
                (o.done_at IS NOT NULL AND o.refusal IS NULL) AS clearing_sent, o.attempts AS clearing_attempts,
                o.next_attempt_at AS clearing_next_at, o.refusal AS clearing_refusal
           FROM acq_transactions a LEFT JOIN outbox o ON o.topic = 'clearing' AND o.key = a.id
          WHERE a.id = $1`,
        [id],
      )
    )[0]!;
  async function audits() {
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  }

  it('one transaction that cannot be settled stops no other; it is logged, backed off, and settled once it can be', async () => {
    const a = await oneDeposit();
    const b = await oneDeposit();
    const c = await oneDeposit();
    // B's row is damaged: settling it throws, whatever order the timer takes them in.
    const { deposit } = await acqRow(b.handle);
    await t.eur.ctx.db.query(`UPDATE acq_transactions SET deposit = 'not money' WHERE id = $1`, [b.handle]);
    t.clock.advance(pastDeadline);
    lines.length = 0;

    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ settled: 2, failed: 1 });
    for (const ok of [a, c]) expect(await ok.shopper.transactionStatus(ok.transactionId)).toMatchObject({ state: 'cleared' });
    const failed = await acqRow(b.handle);
    expect(failed).toMatchObject({ state: 'open', settle_attempts: 1 });
    const retryAt = Number(failed.settle_next_at);
    expect(retryAt).toBeGreaterThan(t.clock.now());
    expect(lines.find((l) => l.level === 'error' && l.obj.transactionId === b.handle)).toBeDefined();

    // Not tried again before its back-off has passed (the timer runs every few seconds).
    t.clock.advance(1_000);
    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ settled: 0, failed: 0 });
    expect(await acqRow(b.handle)).toMatchObject({ settle_attempts: 1 });

    // Still broken at the next try: it fails again and waits longer.
    t.clock.set(retryAt);
    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ failed: 1 });
    const again = await acqRow(b.handle);
    expect(again.settle_attempts).toBe(2);
    expect(Number(again.settle_next_at) - retryAt).toBeGreaterThanOrEqual(16_000); // 20 s ± 20 %, after 10 s ± 20 %

    // Repaired: the next try settles it.
    await t.eur.ctx.db.query('UPDATE acq_transactions SET deposit = $2 WHERE id = $1', [b.handle, deposit]);
    t.clock.set(Number(again.settle_next_at));
    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ settled: 1, failed: 0 });
    expect(await b.shopper.transactionStatus(b.transactionId)).toMatchObject({ state: 'cleared' });
    await audits();
  });

  it('one stalled initiation that cannot be released holds up no other', async () => {
    const a = await oneDeposit();
    const b = await oneDeposit();
    const sekLines: typeof lines = [];
    const sekLog = t.sek.ctx.log;
    t.sek.ctx.log = { ...capture, error: (obj, msg) => sekLines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }) };
    // Both look cut half-way; A's row is damaged.
    for (const { transactionId } of [a, b]) {
      await t.sek.ctx.db.query(`UPDATE am_transactions SET state = 'pending' WHERE id = $1`, [transactionId]);
    }
    // A's deposit cannot be found in the ledger under its name: its void fails.
    await t.sek.ctx.db.query(`UPDATE pending_transfers SET id = 'lost:' || id WHERE id = $1`, [deposits.customer(a.transactionId)]);
    t.clock.advance(600_000);
    expect(await releaseStalledInitiations(t.sek.ctx)).toBe(1);
    const state = async (id: string) =>
      (await t.sek.ctx.db.query<{ state: string }>('SELECT state FROM am_transactions WHERE id = $1', [id]))[0]!.state;
    expect(await state(b.transactionId)).toBe('failed');
    expect(await state(a.transactionId)).toBe('pending');
    expect(sekLines.find((l) => l.obj.transactionId === a.transactionId)).toBeDefined();
    await t.sek.ctx.db.query(`UPDATE pending_transfers SET id = $1 WHERE id = 'lost:' || $1`, [deposits.customer(a.transactionId)]);
    expect(await releaseStalledInitiations(t.sek.ctx)).toBe(1);
    expect(await state(a.transactionId)).toBe('failed');
    t.sek.ctx.log = sekLog;
    // Their deposits at the acquirer clear at the deadline; the refusals end there.
    t.clock.advance(pastDeadline);
    await settleDeadlines(t.eur.ctx);
    await audits();
  });

  it('a customer operator that never opened the transaction answers SESSION_CLOSED once: the clearing is not sent again', async () => {
    const { transactionId, handle } = await oneDeposit();
    // The customer's operator crashed between reserving and the acquirer's acknowledgement: its
    // row stayed pending, and its stalled-initiation timer gave the deposit back.
    await t.sek.ctx.db.query(`UPDATE am_transactions SET state = 'pending' WHERE id = $1`, [transactionId]);
    t.clock.advance(pastDeadline);
    expect(await releaseStalledInitiations(t.sek.ctx)).toBeGreaterThanOrEqual(1);
    lines.length = 0;

    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ settled: 1, refused: 0 });
    const row = await acqRow(handle);
    expect(row).toMatchObject({ state: 'cleared', clearing_sent: false, clearing_refusal: { name: 'SESSION_CLOSED' } });
    expect(lines.find((l) => l.level === 'error' && l.obj.transactionId === handle)).toBeDefined();

    // An hour of timer runs later: nothing was sent again.
    const post = vi.spyOn(t.eur.ctx.peers, 'get');
    for (let i = 0; i < 5; i++) {
      t.clock.advance(720_000);
      expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ resent: 0, refused: 0 });
    }
    expect(post).not.toHaveBeenCalledWith('op-sek');
    post.mockRestore();
    await audits();
  });

  it('a customer operator that does not answer gets the clearing again after a back-off, until it has it', async () => {
    const { shopper, transactionId, handle } = await oneDeposit();
    const real = t.eur.ctx.peers.get.bind(t.eur.ctx.peers);
    const down = vi.spyOn(t.eur.ctx.peers, 'get').mockImplementation(async (id) => ({ ...(await real(id)), url: 'http://127.0.0.1:1' }));
    t.clock.advance(pastDeadline);
    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ settled: 1 });
    const row = await acqRow(handle);
    expect(row).toMatchObject({ state: 'cleared', clearing_sent: false, clearing_attempts: 1, clearing_refusal: null });
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'open' });

    // Still down at the next try: one more attempt, a longer wait.
    t.clock.set(Number(row.clearing_next_at));
    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ resent: 0 });
    const again = await acqRow(handle);
    expect(again.clearing_attempts).toBe(2);
    down.mockRestore();

    // Back before the wait is over: not yet. After it: delivered, and the customer side clears.
    t.clock.advance(1_000);
    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ resent: 0 });
    t.clock.set(Number(again.clearing_next_at));
    expect(await settleDeadlines(t.eur.ctx)).toMatchObject({ resent: 1 });
    expect(await acqRow(handle)).toMatchObject({ clearing_sent: true });
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'cleared' });
    await audits();
  });
});
