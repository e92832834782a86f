import { ObolError } from '@obol/protocol/errors';
import { formatAmount, parseAmount } from '@obol/protocol/money';
import { settleDeadlines } from '../../src/operator/acquirer.ts';
import { releaseStalledInitiations } from '../../src/operator/accountManager.ts';
import { countFault } from './faults.ts';
import type { Violation } from './invariants.ts';
import { type ShopParty, type WalletParty, WalletCrashed, type World } from './world.ts';

/** The actions the scheduler draws from, with their weights. */
export const ACTION_WEIGHTS = {
  buy: 50,
  walletStop: 4,
  merchantStop: 3,
  tick: 8,
  timerJump: 1,
  merchantSweep: 5,
  settleDeadlines: 4,
  releaseStalled: 2,
  billing: 5,
  deliverHeld: 5,
  crash: 2,
  vanish: 1,
  abandon: 0.2,
  refund: 2,
} as const;

export type ActionName = keyof typeof ACTION_WEIGHTS;

/**
 * One step: draw an action, run it to completion (with whatever faults the network draws), and
 * note what happened. Returns violations found by the action itself (an honest purchase refused).
 */
export async function runAction(world: World, name: ActionName): Promise<Violation[]> {
  const { prng, trace } = world;
  switch (name) {
    case 'buy': {
      const w = activeWallet(world);
      if (!w) return [];
      const shop = prng.pick([...world.shops.values()]);
      const product = prng.pick(shop.products);
      trace.begin(world.step, `${w.name} buys ${product.productId} (${product.price}) at ${shop.spec.merchantId}`);
      if (!(await ensureRecovered(world, w))) return [];
      try {
        const result = await w.agent.buy({ merchantUrl: shop.moduleUrl, productId: product.productId, price: product.price });
        world.stats.purchases++;
        const got = new TextDecoder().decode(result.content);
        const want = new TextDecoder().decode(product.content);
        trace.note(`bought: ${result.receipt.transactionId} n=${result.receipt.n}`);
        if (got !== want) return [{ step: world.step, invariant: 'secure delivery', detail: `${w.name} received other content for ${product.productId}` }];
        return [];
      } catch (e) {
        return refusal(world, w, shop, e);
      }
    }
    case 'walletStop': {
      const w = activeWallet(world);
      if (!w) return [];
      const open = (await w.store.listTransactions()).filter((t) => t.state === 'open' && t.transactionId);
      if (open.length === 0) return [];
      const tx = prng.pick(open);
      trace.begin(world.step, `${w.name} stops ${tx.transactionId}`);
      if (!(await ensureRecovered(world, w))) return [];
      try {
        const view = await w.agent.endTransaction(tx.transactionId!, 'wallet');
        trace.note(`-> ${view.state}`);
      } catch (e) {
        noteError(world, w, e);
      }
      return [];
    }
    case 'merchantStop': {
      const shop = prng.pick([...world.shops.values()]);
      if (!shop.agent || shop.awayUntil > world.step) return [];
      const open = await shop.db.query<{ transaction_id: string }>(`SELECT transaction_id FROM merchant_sessions WHERE state = 'open' ORDER BY transaction_id`);
      if (open.length === 0) return [];
      const handle = prng.pick(open).transaction_id;
      trace.begin(world.step, `${shop.spec.merchantId} stops ${handle}`);
      try {
        await shop.agent.stop(handle);
      } catch (e) {
        trace.note(`error ${describe(e)}`);
      }
      return [];
    }
    case 'tick': {
      const ms = prng.int(1, 60) * 1000;
      trace.begin(world.step, `clock +${ms / 1000}s`);
      await world.passTime(ms);
      return [];
    }
    case 'timerJump': {
      // Past a session's timer (600 s), and sometimes past the clearing grace after it.
      const ms = prng.int(600, 1200) * 1000;
      trace.begin(world.step, `clock +${ms / 1000}s (timers)`);
      await world.passTime(ms);
      return [];
    }
    case 'merchantSweep': {
      const shop = prng.pick([...world.shops.values()]);
      if (!shop.agent || shop.awayUntil > world.step) return [];
      trace.begin(world.step, `${shop.spec.merchantId} sweeps`);
      const r = await shop.agent.sweep();
      trace.note(JSON.stringify(r));
      return [];
    }
    case 'settleDeadlines': {
      const op = prng.pick([...world.operators.values()]);
      trace.begin(world.step, `${op.spec.id} settles deadlines`);
      world.touch(op.spec.id);
      const r = await settleDeadlines(op.server!.ctx);
      trace.note(JSON.stringify(r));
      return [];
    }
    case 'releaseStalled': {
      const op = prng.pick([...world.operators.values()]);
      trace.begin(world.step, `${op.spec.id} releases stalled initiations`);
      world.touch(op.spec.id);
      const r = await releaseStalledInitiations(op.server!.ctx);
      trace.note(`released ${r}`);
      return [];
    }
    case 'billing': {
      const op = prng.pick([...world.operators.values()]);
      trace.begin(world.step, `${op.spec.id} dispatches billing`);
      const r = await op.server!.billing.dispatchDue();
      trace.note(JSON.stringify(r));
      return [];
    }
    case 'deliverHeld': {
      if (world.net.held.length === 0) return [];
      trace.begin(world.step, 'a held-back request arrives');
      trace.note((await world.net.deliverHeld()) ?? '');
      return [];
    }
    case 'crash': {
      const kind = prng.int(0, 2);
      if (kind === 0) {
        const op = prng.pick([...world.operators.values()]);
        trace.begin(world.step, `crash ${op.spec.id}`);
        countFault(world.stats, 'crash');
        await world.restartOperator(op);
      } else if (kind === 1) {
        const shop = prng.pick([...world.shops.values()]);
        trace.begin(world.step, `crash ${shop.spec.merchantId}`);
        countFault(world.stats, 'crash');
        await world.restartShop(shop);
      } else {
        const w = activeWallet(world);
        if (!w) return [];
        trace.begin(world.step, `crash ${w.name}`);
        countFault(world.stats, 'crash');
        world.restartWallet(w);
      }
      return [];
    }
    case 'vanish': {
      const shop = prng.pick([...world.shops.values()]);
      if (shop.awayUntil > world.step) return [];
      shop.awayUntil = world.step + prng.int(5, 60);
      shop.away.push([world.clock.now(), Number.POSITIVE_INFINITY]);
      trace.begin(world.step, `${shop.spec.merchantId} vanishes until step ${shop.awayUntil}`);
      countFault(world.stats, 'vanish');
      return [];
    }
    case 'refund': {
      // A shop gives back part or all of what is left of a cleared session, through its operator.
      const shop = prng.pick([...world.shops.values()]);
      if (!shop.agent || shop.awayUntil > world.step) return [];
      const acq = world.operators.get(shop.spec.operatorId)!;
      const cleared = await acq.db.query<{ id: string; refunded: string | number; clearing: { body: { charged: string } } }>(
        `SELECT id, refunded, clearing FROM acq_transactions WHERE merchant_id = $1 AND state = 'cleared' ORDER BY id`,
        [shop.spec.merchantId],
      );
      const open = cleared
        .map((r) => ({ id: r.id, left: parseAmount(r.clearing.body.charged).value - BigInt(r.refunded) }))
        .filter((r) => r.left > 0n);
      if (open.length === 0) return [];
      const target = prng.pick(open);
      const value = BigInt(prng.int(1, Number(target.left)));
      const amount = formatAmount({ currency: shop.spec.currency, value });
      trace.begin(world.step, `${shop.spec.merchantId} refunds ${amount} of ${target.id}`);
      try {
        const r = await shop.agent.refund({ transactionId: target.id, amount });
        world.stats.refunds++;
        trace.note(`refund ${r.n}, ${r.refundedTotal} in all`);
        return [];
      } catch (e) {
        trace.note(`error ${describe(e)}`);
        // Within what is left and the merchant's account holds it: only a fault may stop it.
        if (world.trace.faultsThisStep > 0) return [];
        return [{ step: world.step, invariant: 'an honest refund is booked', detail: `${shop.spec.merchantId} ${target.id} ${amount}: ${describe(e)}` }];
      }
    }
    case 'abandon': {
      const active = world.wallets.filter((x) => !x.abandoned);
      if (active.length <= 2) return [];
      const w = prng.pick(active);
      trace.begin(world.step, `${w.name} stops for good (never reports)`);
      w.abandoned = true;
      w.fenced.alive = false;
      return [];
    }
  }
}

function activeWallet(world: World): WalletParty | undefined {
  const active = world.wallets.filter((x) => !x.abandoned);
  return active.length === 0 ? undefined : world.prng.pick(active);
}

/** A restarted wallet first finishes what it left half done (the extension does this on start). */
export async function ensureRecovered(world: World, w: WalletParty): Promise<boolean> {
  if (!w.needsRecover) return true;
  try {
    const steps = await w.agent.recover();
    w.needsRecover = false;
    const errors = steps.filter((s) => s.error);
    if (errors.length > 0) world.trace.note(`recover: ${errors.map((s) => `${s.transactionId ?? s.id} ${s.error!.name}`).join(', ')}`);
    return true;
  } catch (e) {
    noteError(world, w, e);
    return false;
  }
}

function noteError(world: World, w: WalletParty, e: unknown): void {
  if (e instanceof WalletCrashed) {
    world.trace.note(`${w.name} crashed in flight; restarts`);
    world.restartWallet(w);
    return;
  }
  world.trace.note(`error ${describe(e)}`);
}

/**
 * A purchase that did not happen. Allowed when a fault was injected while it ran, or a party it
 * needs is away; an honest purchase refused for any other reason is a violation.
 */
function refusal(world: World, w: WalletParty, shop: ShopParty, e: unknown): Violation[] {
  const faulted = world.trace.faultsThisStep > 0 || shop.awayUntil > world.step;
  noteError(world, w, e);
  if (faulted || e instanceof WalletCrashed) {
    world.stats.refusedByFault++;
    return [];
  }
  return [{ step: world.step, invariant: 'no honest purchase refused', detail: `${w.name} at ${shop.spec.merchantId}: ${describe(e)}` }];
}

export function describe(e: unknown): string {
  if (e instanceof ObolError) return `${e.name}: ${e.message}`;
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? `\n${e.stack.split('\n').slice(1, 6).join('\n')}` : ''}`;
  return String(e);
}
