import type { BridgeResults } from '../bridgeWire.ts';
import type { ObolErrorJson } from '../errors.ts';
import { type Amount, add, compare, formatAmount, max, parseAmount, zero } from '../money.ts';
import type { StoreAccess, WalletDatabase, WalletTransaction } from '../walletDatabase.ts';
import type { PromptKind, ReservationRecord, SiteRecord } from '../walletStore.ts';
import { asOf } from './budgetPeriod.ts';
import { effectiveRules } from './consent.ts';

/**
 * Spending control: per-site budgets and an auto-pay limit per purchase. A purchase holds its
 * price in a reservation while it is in flight; reserving (check and hold) and committing (count
 * as spent, drop the hold, mark the purchase done) are each ONE read-write transaction of the
 * wallet's database over the stores they need, so two payments at once can never both fit in a
 * budget that has room for one (read-write transactions over the same stores run one after the
 * other).
 */

/** `no-gesture`: the purchase would pass without a window, but the page had no fresh user gesture. */
export type ReserveOutcome =
  | { ok: true }
  | { ok: false; reason: PromptKind | 'blocked' | 'no-gesture'; site?: SiteRecord; reserved: string };

function sum(currency: string, list: ReservationRecord[]): Amount {
  return list.reduce((acc, r) => add(acc, parseAmount(r.amount)), zero(currency));
}

/**
 * Reserves `amount` at `origin` if the site is approved, not blocked, the purchase fits, and the
 * page had a fresh user gesture for it (`gesture`: no purchase passes without the shopper's act,
 * a gesture on the page or a click in the wallet's window). Rules still waiting on their purchase
 * (`pending`) do not count yet.
 */
export async function tryReserve(
  db: WalletDatabase,
  req: { paymentKey: string; origin: string; amount: string; now: number; gesture: boolean; priceCustomer?: string },
): Promise<ReserveOutcome> {
  return db.transaction(['sites', 'reservations', 'payments'], 'readwrite', async (t) => {
    const amount = parseAmount(req.amount);
    const stored = await t.store('sites').get(req.origin);
    // A budget whose period ended renews here, on the wallet's clock, before it is checked.
    const site = stored && asOf(stored, req.now);
    if (site && site !== stored) await t.store('sites').put(site);
    const reservations = t.store('reservations');
    if (await reservations.get(req.paymentKey)) return { ok: true };
    const held = sum(amount.currency, await reservations.index('byOrigin').getAll(req.origin));
    const rules = effectiveRules(site);
    const refuse = (reason: Exclude<ReserveOutcome, { ok: true }>['reason']): ReserveOutcome =>
      site ? { ok: false, reason, site, reserved: formatAmount(held) } : { ok: false, reason, reserved: formatAmount(held) };
    let outcome: ReserveOutcome;
    if (site?.blocked) outcome = refuse('blocked');
    else if (!site || !rules?.approved) outcome = refuse('first');
    else if (compare(amount, parseAmount(rules.autoPayLimit)) > 0) outcome = refuse('over-auto-pay');
    else if (compare(add(add(parseAmount(site.spent), held), amount), parseAmount(rules.budget)) > 0) outcome = refuse('over-budget');
    else if (!req.gesture) outcome = refuse('no-gesture');
    else {
      await reservations.put({ paymentKey: req.paymentKey, origin: req.origin, amount: req.amount, createdAt: req.now });
      await markAuthorized(t.store('payments'), req.paymentKey, req.now, req.priceCustomer);
      outcome = { ok: true };
    }
    return outcome;
  });
}

/**
 * The shopper accepted in the confirmation window: the site's new rules are written as `pending`
 * on this purchase and this purchase is reserved, in one transaction. The rules count only once
 * the purchase succeeds (`commit`); a failed purchase puts the site back (`release`). The budget
 * is never left below what is spent and held plus this purchase: accepting a purchase means
 * accepting its price.
 */
export async function approveAndReserve(
  db: WalletDatabase,
  req: { paymentKey: string; origin: string; amount: string; budget: string; autoPayLimit: string; merchantId?: string; now: number },
): Promise<SiteRecord> {
  return db.transaction(['sites', 'reservations', 'payments'], 'readwrite', async (t) => {
    const amount = parseAmount(req.amount);
    const sites = t.store('sites');
    const reservations = t.store('reservations');
    const stored = await sites.get(req.origin);
    const old = stored && asOf(stored, req.now);
    const held = sum(amount.currency, await reservations.index('byOrigin').getAll(req.origin));
    const already = await reservations.get(req.paymentKey);
    const spent = old ? parseAmount(old.spent) : zero(amount.currency);
    const needed = add(add(spent, held), already ? zero(amount.currency) : amount);
    const before = effectiveRules(old);
    const site: SiteRecord = {
      origin: req.origin,
      approved: true,
      budget: formatAmount(max(parseAmount(req.budget), needed)),
      spent: formatAmount(spent),
      autoPayLimit: formatAmount(parseAmount(req.autoPayLimit)),
      blocked: false,
      pending: { paymentKey: req.paymentKey, ...(before ? { before } : {}) },
      createdAt: old?.createdAt ?? req.now,
      updatedAt: req.now,
    };
    const merchantId = req.merchantId ?? old?.merchantId;
    if (merchantId) site.merchantId = merchantId;
    if (old?.period && old.periodStart !== undefined) {
      site.period = old.period;
      site.periodStart = old.periodStart;
    }
    await sites.put(site);
    if (!already) await reservations.put({ paymentKey: req.paymentKey, origin: req.origin, amount: req.amount, createdAt: req.now });
    await markAuthorized(t.store('payments'), req.paymentKey, req.now);
    return site;
  });
}

/** `priceCustomer`: the quote the reservation holds, kept on the purchase record in the same write. */
async function markAuthorized(payments: StoreAccess<'payments'>, key: string, now: number, priceCustomer?: string): Promise<void> {
  const p = await payments.get(key);
  if (p && p.state !== 'done' && p.state !== 'failed') await payments.put({ ...p, ...(priceCustomer !== undefined ? { priceCustomer } : {}), state: 'authorized', updatedAt: now });
}

/**
 * The purchase was charged: its reservation becomes spending and the payment is done (or failed,
 * when the merchant holds the accept but delivered something else: charged all the same, and the
 * receipt is the evidence for a dispute). Idempotent.
 */
export type CommitRequest = {
  paymentKey: string;
  receiptKey: string;
  now: number;
  /**
   * What the purchase costs the shopper as her bank books it (figures.ts), counted as spent at the
   * site instead of the reserved quote, so the budget and the receipts show the same figure.
   */
  chargedCustomer?: string;
} & ({ result: BridgeResults['obol_pay'] } | { error: ObolErrorJson });

/** Returns the state the purchase record moved to, or undefined when it had been committed already. */
export function commit(db: WalletDatabase, req: CommitRequest): Promise<'done' | 'failed' | undefined> {
  return db.transaction(['sites', 'reservations', 'payments'], 'readwrite', (t) => commitIn(t, req));
}

/** `commit` inside a transaction that holds these stores (the agent's booking of the purchase). */
export async function commitIn(t: WalletTransaction<'sites' | 'reservations' | 'payments'>, req: CommitRequest): Promise<'done' | 'failed' | undefined> {
  const reservations = t.store('reservations');
  const sites = t.store('sites');
  const payments = t.store('payments');
  const held = await reservations.get(req.paymentKey);
  const payment = await payments.get(req.paymentKey);
  if (held) {
    const stored = await sites.get(held.origin);
    const site = stored && asOf(stored, req.now);
    if (site) {
      const cost = req.chargedCustomer !== undefined && parseAmount(req.chargedCustomer).currency === parseAmount(held.amount).currency ? req.chargedCustomer : held.amount;
      const charged = { ...site, spent: formatAmount(add(parseAmount(site.spent), parseAmount(cost))), updatedAt: req.now };
      // The purchase the shopper confirmed: its rules now count — only if it delivered.
      await sites.put(site.pending?.paymentKey === req.paymentKey ? ('result' in req ? settled(charged) : reverted(charged)) : charged);
    }
    await reservations.delete(req.paymentKey);
  }
  if (!payment || payment.state === 'done' || (payment.state === 'failed' && payment.receiptKey === req.receiptKey)) return undefined;
  // A receipt claimed by another payment already (cannot happen: receipts name their purchase; guard anyway) is not claimed twice.
  const claimed = await payments.index('byReceipt').getKey(req.receiptKey);
  const next = { ...payment, updatedAt: req.now, ...(claimed === undefined || claimed === req.paymentKey ? { receiptKey: req.receiptKey } : {}) };
  if ('result' in req) {
    await payments.put({ ...next, state: 'done', result: req.result });
    return 'done';
  }
  await payments.put({ ...next, state: 'failed', error: req.error });
  return 'failed';
}

/** The confirmed purchase succeeded: its rules stand. */
function settled(site: SiteRecord): SiteRecord {
  const { pending: _pending, ...rest } = site;
  return rest;
}

/** The confirmed purchase failed: the site goes back to the rules before the window (or to unapproved). */
function reverted(site: SiteRecord): SiteRecord {
  const { pending, ...rest } = site;
  const before = pending?.before;
  return before ? { ...rest, ...before } : { ...rest, approved: false };
}

/**
 * The purchase did not happen: the reservation goes, the payment fails with `error`, and rules the
 * shopper chose for it do not stand (an approval counts only for a purchase that succeeded).
 * Idempotent.
 */
export async function release(db: WalletDatabase, req: { paymentKey: string; error: ObolErrorJson; now: number }): Promise<void> {
  await db.transaction(['sites', 'reservations', 'payments'], 'readwrite', async (t) => {
    const reservations = t.store('reservations');
    const held = await reservations.get(req.paymentKey);
    if (held) {
      const sites = t.store('sites');
      const site = await sites.get(held.origin);
      if (site?.pending?.paymentKey === req.paymentKey) await sites.put({ ...reverted(site), updatedAt: req.now });
    }
    await reservations.delete(req.paymentKey);
    const payments = t.store('payments');
    const payment = await payments.get(req.paymentKey);
    if (payment && payment.state !== 'done') await payments.put({ ...payment, state: 'failed', error: req.error, updatedAt: req.now });
  });
}

/** What is held at a site now (customer currency). */
export async function heldAt(db: WalletDatabase, origin: string, currency: string): Promise<string> {
  return formatAmount(sum(currency, await db.transaction(['reservations'], 'readonly', (t) => t.store('reservations').index('byOrigin').getAll(origin))));
}
