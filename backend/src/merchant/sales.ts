/**
 * A merchant's view of its own sales, from its own database: what was sold (accepted purchases,
 * the only ones that are charged), by product and by day, and its trading sessions by state.
 * Served to the shop's administration (`GET <module>/admin/sales`, `obol merchant sales`).
 */
import { amount, formatAmount } from '@obol/protocol/money';
import type { Queryable } from '../store/db.ts';

export interface SalesLine {
  /** The product id, or the day (UTC, YYYY-MM-DD). */
  key: string;
  purchases: number;
  /** Money, wire form ("EUR:0.50"). */
  amount: string;
}

export interface SalesReport {
  currency: string;
  /** Accepted purchases and their sum, all time. */
  purchases: number;
  total: string;
  byProduct: SalesLine[];
  /** The last `days` days that had sales, newest first. */
  byDay: SalesLine[];
  /** Trading sessions by state: open, closing (record not yet delivered), reported, cleared. */
  sessions: { state: string; count: number; deposits: string; spent: string }[];
}

const DAY_MS = 86_400_000;

export async function salesReport(db: Queryable, currency: string, options: { days?: number } = {}): Promise<SalesReport> {
  const days = Math.min(Math.max(Math.trunc(options.days ?? 30), 1), 366);
  const money = (v: unknown) => formatAmount(amount(currency, BigInt(String(v ?? 0))));
  const byProduct = await db.query<{ product_id: string; n: unknown; total: unknown }>(
    `SELECT product_id, count(*) AS n, coalesce(sum(amount), 0) AS total
       FROM merchant_orders WHERE accept_id IS NOT NULL
      GROUP BY product_id ORDER BY sum(amount) DESC, product_id`,
  );
  const byDay = await db.query<{ day: unknown; n: unknown; total: unknown }>(
    `SELECT accepted_at / ${DAY_MS} AS day, count(*) AS n, coalesce(sum(amount), 0) AS total
       FROM merchant_orders WHERE accept_id IS NOT NULL
      GROUP BY accepted_at / ${DAY_MS} ORDER BY accepted_at / ${DAY_MS} DESC LIMIT $1`,
    [days],
  );
  const sessions = await db.query<{ state: string; n: unknown; deposits: unknown; spent: unknown }>(
    `SELECT state, count(*) AS n, coalesce(sum(deposit), 0) AS deposits, coalesce(sum(spent), 0) AS spent
       FROM merchant_sessions GROUP BY state ORDER BY state`,
  );
  const lines = byProduct.map((r) => ({ key: r.product_id, purchases: Number(r.n), amount: money(r.total) }));
  const total = byProduct.reduce((sum, r) => sum + BigInt(String(r.total)), 0n);
  return {
    currency,
    purchases: lines.reduce((n, l) => n + l.purchases, 0),
    total: money(total),
    byProduct: lines,
    byDay: byDay.map((r) => ({ key: new Date(Number(r.day) * DAY_MS).toISOString().slice(0, 10), purchases: Number(r.n), amount: money(r.total) })),
    sessions: sessions.map((r) => ({ state: r.state, count: Number(r.n), deposits: money(r.deposits), spent: money(r.spent) })),
  };
}
