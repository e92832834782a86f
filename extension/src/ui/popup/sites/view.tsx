import { useState } from 'preact/hooks';
import type { SiteItem, WalletParams } from '../../../shared/messages.ts';
import { BudgetPeriodControl } from './BudgetPeriod.tsx';
import type { DeclinedSite } from '../../../shared/messages.ts';
import { errorText } from '../../shared/errorText.ts';
import { currencyOf, digits, money, when } from '../../shared/format.ts';
import { t } from '../../shared/i18n.ts';
import { useDeclined, useSites } from './state.ts';

/** An error for the shopper, or nothing. */
const textOf = (e: { name: string; message: string } | undefined) => (e ? errorText(e) : undefined);

/** Sites the shopper said no to: they open no window until allowed again here or the cool-down ends. */
function DeclinedList({ declined, allowAgain }: { declined: DeclinedSite[]; allowAgain: (origin: string) => Promise<{ name: string; message: string } | undefined> }) {
  const [error, setError] = useState<string | undefined>();
  if (declined.length === 0) return null;
  return (
    <section aria-label={t('sites_blocked')}>
      <h2>{t('sites_blocked')}</h2>
      <ul class="list">
        {declined.map((d) => (
          <li class="card" data-testid="declined-site" key={d.origin}>
            <div class="row between">
              <strong>{d.origin}</strong>
              <button type="button" class="link" onClick={async () => setError(textOf(await allowAgain(d.origin)))}>
                {t('sites_allowAgain')}
              </button>
            </div>
            <div class="muted">{t('sites_declinedUntil', when(d.until))}</div>
          </li>
        ))}
      </ul>
      {error ? <p class="error">{error}</p> : null}
    </section>
  );
}

function SiteCard({ site, save, remove }: { site: SiteItem; save: (p: WalletParams<'setSite'>) => Promise<{ name: string; message: string } | undefined>; remove: (o: string) => Promise<void> }) {
  const [budget, setBudget] = useState(digits(site.budget));
  const [auto, setAuto] = useState(digits(site.autoPayLimit));
  const [error, setError] = useState<string | undefined>();
  const currency = currencyOf(site.budget);
  return (
    <li class="card" data-testid="site">
      <div class="row between">
        <strong>{site.origin}</strong>
        {site.blocked ? <span class="error">{t('sites_isBlocked')}</span> : null}
      </div>
      <div class="muted">
        {t('sites_spentOf', money(site.spent), money(site.budget))}
        {site.reserved && !/:0(\.0+)?$/.test(site.reserved) ? ` · ${t('sites_inFlight', money(site.reserved))}` : ''}
      </div>
      <form
        class="grid"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(textOf(await save({ origin: site.origin, budget, autoPayLimit: auto })));
        }}
      >
        <label>
          {t('sites_budget', currency)} <input aria-label={t('sites_budgetFor', site.origin)} value={budget} onInput={(e) => setBudget(e.currentTarget.value)} size={7} />
        </label>
        <label>
          {t('sites_autoPay', currency)} <input aria-label={t('sites_autoPayFor', site.origin)} value={auto} onInput={(e) => setAuto(e.currentTarget.value)} size={7} />
        </label>
        <button type="submit">{t('sites_save')}</button>
      </form>
      <BudgetPeriodControl site={site} save={save} />
      <div class="row">
        <button type="button" class="link" onClick={async () => setError(textOf(await save({ origin: site.origin, resetSpent: true })))}>
          {t('sites_resetSpent')}
        </button>
        <button type="button" class="link" onClick={async () => setError(textOf(await save({ origin: site.origin, blocked: !site.blocked })))}>
          {site.blocked ? t('sites_unblock') : t('sites_block')}
        </button>
        <button type="button" class="link" onClick={() => void remove(site.origin)}>
          {t('sites_forget')}
        </button>
      </div>
      {error ? <p class="error">{error}</p> : null}
      {site.merchantId ? (
        <details class="ids">
          <summary>{t('details')}</summary>
          <dl>
            <dt>{t('details_merchant')}</dt>
            <dd>{site.merchantId}</dd>
          </dl>
        </details>
      ) : null}
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
      return <p class="muted">{t('loading')}</p>;
    case 'error':
      return <p class="error">{errorText(state.error)}</p>;
    case 'empty':
      return <p class="muted">{t('sites_none')}</p>;
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
