import { ObolError } from '../errors.ts';
import { formatAmount, parseAmount, zero } from '../money.ts';
import type { BudgetPeriod, SiteRecord } from '../walletStore.ts';

/**
 * Budgets that renew: a site's budget may be per day, week or month, counted from when the
 * shopper set the period (`periodStart`), on the wallet's clock. Renewal is lazy: whoever reads or
 * books a site's budget first takes it as it stands now (`asOf`), so a period that ended while the
 * wallet slept is renewed at the next purchase, and a test that moves the clock sees it renew.
 */

export const BUDGET_PERIODS: readonly BudgetPeriod[] = ['day', 'week', 'month'];

const DAY_MS = 86_400_000;

export function isBudgetPeriod(value: unknown): value is BudgetPeriod {
  return typeof value === 'string' && (BUDGET_PERIODS as readonly string[]).includes(value);
}

/** The end of the period of kind `period` that starts at `start` (a month: the same day and time next month, UTC; clamped to its last day). */
export function periodEnd(period: BudgetPeriod, start: number): number {
  if (period === 'day') return start + DAY_MS;
  if (period === 'week') return start + 7 * DAY_MS;
  const d = new Date(start);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth() + 1;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Date.UTC(year, month, Math.min(d.getUTCDate(), lastDay), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
}

/** The start of the period that contains `now` (periods follow each other from `start`); at most 1200 months are stepped. */
export function currentPeriodStart(period: BudgetPeriod, start: number, now: number): number {
  if (now < periodEnd(period, start)) return start;
  if (period !== 'month') {
    const length = periodEnd(period, 0);
    return start + Math.floor((now - start) / length) * length;
  }
  let s = start;
  for (let i = 0; i < 1200 && now >= periodEnd(period, s); i++) s = periodEnd(period, s);
  return s;
}

/**
 * The site as its budget stands at `now`: when its period has ended, the next one begins with
 * nothing spent. The same record when nothing changed (so callers can tell whether to write).
 */
export function asOf(site: SiteRecord, now: number): SiteRecord {
  if (!site.period || site.periodStart === undefined) return site;
  const start = currentPeriodStart(site.period, site.periodStart, now);
  if (start === site.periodStart) return site;
  return { ...site, periodStart: start, spent: formatAmount(zero(parseAmount(site.spent).currency)), updatedAt: now };
}

/** When the site's budget renews next (undefined: it does not renew). */
export function renewsAt(site: SiteRecord, now: number): number | undefined {
  if (!site.period || site.periodStart === undefined) return undefined;
  return periodEnd(site.period, currentPeriodStart(site.period, site.periodStart, now));
}

/** A period as the popup sends it: 'day' | 'week' | 'month', or 'none' for a budget for all time. */
export function parsePeriod(value: unknown): BudgetPeriod | 'none' {
  if (value === 'none' || isBudgetPeriod(value)) return value;
  throw new ObolError('MALFORMED', 'a budget period is day, week, month or none');
}
