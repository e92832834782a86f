import { useState } from 'preact/hooks';
import type { SiteItem, WalletParams } from '../../../shared/messages.ts';
import { when } from '../../shared/format.ts';
import { t } from '../../shared/i18n.ts';

const PERIODS = [
  ['none', 'spend_periodNone'],
  ['day', 'spend_periodDay'],
  ['week', 'spend_periodWeek'],
  ['month', 'spend_periodMonth'],
] as const;

/** How often a site's budget renews (the core renews it on its clock; spent then counts from zero). */
export function BudgetPeriodControl({ site, save }: { site: SiteItem; save: (p: WalletParams<'setSite'>) => Promise<{ message: string } | undefined> }) {
  const [error, setError] = useState<string | undefined>();
  return (
    <div class="row period-row">
      <label>
        {t('spend_periodLabel')}{' '}
        <select
          aria-label={`${t('spend_periodLabel')} ${site.origin}`}
          value={site.period ?? 'none'}
          onChange={async (e) => setError((await save({ origin: site.origin, period: e.currentTarget.value }))?.message)}
        >
          {PERIODS.map(([value, key]) => (
            <option key={value} value={value}>
              {t(key)}
            </option>
          ))}
        </select>
      </label>
      {site.renewsAt !== undefined ? (
        <span class="muted" data-testid="renews-at">
          {t('spend_renewsAt', when(site.renewsAt))}
        </span>
      ) : null}
      {error ? <p class="error">{error}</p> : null}
    </div>
  );
}
