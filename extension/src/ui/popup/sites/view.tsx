import { useState } from 'preact/hooks';
import type { SiteItem, WalletParams } from '../../../shared/messages.ts';
import { digits, money } from '../../shared/format.ts';
import { BudgetPeriodControl } from './BudgetPeriod.tsx';
import { useDeclined, useSites } from './state.ts';
import { when } from '../../shared/format.ts';
import type { DeclinedSite } from '../../../shared/messages.ts';

/** Sites the shopper said no to: they open no window until allowed again here or the cool-down ends. */
function DeclinedList({ declined, allowAgain }: { declined: DeclinedSite[]; allowAgain: (origin: string) => Promise<{ message: string } | undefined> }) {
  const [error, setError] = useState<string | undefined>();
  if (declined.length === 0) return null;
  return (
    <section aria-label="blocked sites">
      <h2>Blocked sites</h2>
      <ul class="list">
        {declined.map((d) => (
          <li class="card" data-testid="declined-site" key={d.origin}>
            <div class="row between">
              <strong>{d.origin}</strong>
              <button type="button" class="link" onClick={async () => setError((await allowAgain(d.origin))?.message)}>
                Allow again
              </button>
            </div>
            <div class="muted">You declined a payment here; it may ask again after {when(d.until)}.</div>
          </li>
        ))}
      </ul>
      {error ? <p class="error">{error}</p> : null}
    </section>
  );
}

function SiteCard({ site, save, remove }: { site: SiteItem; save: (p: WalletParams<'setSite'>) => Promise<{ message: string } | undefined>; remove: (o: string) => Promise<void> }) {
  const [budget, setBudget] = useState(digits(site.budget));
  const [auto, setAuto] = useState(digits(site.autoPayLimit));
  const [error, setError] = useState<string | undefined>();
  return (
    <li class="card" data-testid="site">
      <div class="row between">
        <strong>{site.origin}</strong>
        {site.blocked ? <span class="error">blocked</span> : null}
      </div>
      <div class="muted">
        spent {money(site.spent)} of {money(site.budget)}
        {site.reserved && !/:0(\.0+)?$/.test(site.reserved) ? ` · ${money(site.reserved)} in flight` : ''} · merchant {site.merchantId ?? '—'}
      </div>
      <form
        class="grid"
        onSubmit={async (e) => {
          e.preventDefault();
          setError((await save({ origin: site.origin, budget, autoPayLimit: auto }))?.message);
        }}
      >
        <label>
          Budget <input aria-label={`budget for ${site.origin}`} value={budget} onInput={(e) => setBudget(e.currentTarget.value)} size={7} />
        </label>
        <label>
          Auto-pay up to <input aria-label={`auto-pay limit for ${site.origin}`} value={auto} onInput={(e) => setAuto(e.currentTarget.value)} size={7} />
        </label>
        <button type="submit">Save</button>
      </form>
      <BudgetPeriodControl site={site} save={save} />
      <div class="row">
        <button type="button" class="link" onClick={async () => setError((await save({ origin: site.origin, resetSpent: true }))?.message)}>
          Reset spent
        </button>
        <button type="button" class="link" onClick={async () => setError((await save({ origin: site.origin, blocked: !site.blocked }))?.message)}>
          {site.blocked ? 'Unblock' : 'Block'}
        </button>
        <button type="button" class="link" onClick={() => void remove(site.origin)}>
          Forget (ask again next time)
        </button>
      </div>
      {error ? <p class="error">{error}</p> : null}
    </li>
  );
}

export function SitesScreen() {
  const { declined, allowAgain } = useDeclined();
  return (
    <>
      <DeclinedList declined={declined} allowAgain={allowAgain} />
      <SiteRules />
    </>
  );
}

function SiteRules() {
  const { state, save, remove } = useSites();
  switch (state.status) {
    case 'loading':
      return <p class="muted">Loading…</p>;
    case 'error':
      return <p class="error">{state.error.message}</p>;
    case 'empty':
      return <p class="muted">No sites yet: the first purchase at a site asks you and sets its budget.</p>;
    case 'ready':
      return (
        <ul class="list">
          {state.sites.map((s) => (
            <SiteCard key={`${s.origin}${s.updatedAt}`} site={s} save={save} remove={remove} />
          ))}
        </ul>
      );
  }
}
