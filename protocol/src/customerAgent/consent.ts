import { ObolError } from '../errors.ts';
import { type WalletDatabase, readStore, writeStore } from '../walletDatabase.ts';
import type { ConsentRecord, SiteRecord } from '../walletStore.ts';

/**
 * What the shopper's answers in confirmation windows mean for a site, kept in the wallet's
 * database (so they hold across tabs, reloads and a stopped service worker) and read with the wallet's injected
 * clock:
 *
 * - a "no" (Decline, or the window closed) stops every further request of that site — no more
 *   windows from any tab or reload — until the shopper allows it again in the popup or the
 *   cool-down has passed (SITE_BLOCKED);
 * - a site gets at most `PROMPTS_PER_MINUTE` windows in any minute, whatever it does
 *   (TOO_MANY_PROMPTS);
 * - a site counts as approved only with rules whose purchase succeeded (`pending` is not yet).
 */
export const DECLINE_COOL_DOWN_MS = 10 * 60_000;
export const PROMPTS_PER_MINUTE = 3;
const MINUTE_MS = 60_000;

/** The rules that hold at a site now: the approved ones, never those still waiting on their purchase. */
export function effectiveRules(site: SiteRecord | undefined): { approved: boolean; budget: string; autoPayLimit: string } | undefined {
  if (!site) return undefined;
  if (site.pending) return site.pending.before;
  return { approved: site.approved, budget: site.budget, autoPayLimit: site.autoPayLimit };
}

/** Approved by the shopper (a confirmed purchase there succeeded) and not blocked. */
export function isApproved(site: SiteRecord | undefined): boolean {
  return !!site && !site.blocked && effectiveRules(site)?.approved === true;
}

export async function siteApproved(db: WalletDatabase, origin: string): Promise<boolean> {
  return isApproved(await readStore(db, 'sites', (s) => s.get(origin)));
}

/** SITE_BLOCKED while a "no" at this site holds. */
export async function checkNotDeclined(db: WalletDatabase, origin: string, now: number): Promise<void> {
  checkConsent(await readStore(db, 'consent', (s) => s.get(origin)), now);
}

/** The same rule on a site's consent record already read (the caller's transaction). */
export function checkConsent(c: ConsentRecord | undefined, now: number): void {
  if (c?.declinedUntil !== undefined && c.declinedUntil > now) {
    const minutes = Math.max(1, Math.ceil((c.declinedUntil - now) / MINUTE_MS));
    throw new ObolError('SITE_BLOCKED', `a payment on this site was declined; allow it again in the Obol wallet, or try again in ${minutes} min`);
  }
}

/**
 * Checks and counts a window about to open for `origin`, in one read-write transaction (two tabs
 * asking at once cannot both take the last slot): SITE_BLOCKED while declined, TOO_MANY_PROMPTS
 * past the rate.
 */
export async function takeWindowSlot(db: WalletDatabase, origin: string, now: number): Promise<void> {
  const refusal = await writeStore(db, 'consent', async (store) => {
    const c: ConsentRecord = (await store.get(origin)) ?? { origin, windows: [] };
    let refusal: ObolError | undefined;
    if (c.declinedUntil !== undefined && c.declinedUntil > now) {
      refusal = new ObolError('SITE_BLOCKED', 'a payment on this site was declined; allow it again in the Obol wallet');
    } else {
      const recent = c.windows.filter((w) => w > now - MINUTE_MS && w <= now);
      if (recent.length >= PROMPTS_PER_MINUTE) {
        refusal = new ObolError('TOO_MANY_PROMPTS', `this site asked for ${PROMPTS_PER_MINUTE} confirmations in the last minute; wait a moment`);
      } else {
        await store.put({ ...c, windows: [...recent, now] });
      }
    }
    return refusal;
  });
  if (refusal) throw refusal;
}

/** The shopper said no at `origin`: no more windows from it until lifted or `DECLINE_COOL_DOWN_MS`. */
export async function recordDecline(db: WalletDatabase, origin: string, now: number): Promise<void> {
  await writeStore(db, 'consent', async (store) => {
    const c: ConsentRecord = (await store.get(origin)) ?? { origin, windows: [] };
    await store.put({ ...c, declinedAt: now, declinedUntil: now + DECLINE_COOL_DOWN_MS });
  });
}

/** "Allow again" in the popup: the decline is lifted (the window rate still holds). */
export async function liftDecline(db: WalletDatabase, origin: string): Promise<void> {
  await writeStore(db, 'consent', async (store) => {
    const c = await store.get(origin);
    if (c) {
      const { declinedUntil: _until, declinedAt: _at, ...rest } = c;
      await store.put(rest);
    }
  });
}

export interface DeclinedSite {
  origin: string;
  declinedAt: number;
  until: number;
}

/** The sites whose "no" still holds, for the popup. */
export async function declinedSites(db: WalletDatabase, now: number): Promise<DeclinedSite[]> {
  const out: DeclinedSite[] = [];
  for (const c of await readStore(db, 'consent', (s) => s.getAll())) {
    if (c.declinedUntil !== undefined && c.declinedUntil > now) out.push({ origin: c.origin, declinedAt: c.declinedAt ?? now, until: c.declinedUntil });
  }
  return out;
}
