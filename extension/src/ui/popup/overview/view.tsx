import { useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { errorText } from '../../shared/errorText.ts';
import { money, when } from '../../shared/format.ts';
import { SpendingNotices } from './SpendingNotices.tsx';
import { t } from '../../shared/i18n.ts';
import { type TableView, useOverview } from './state.ts';

const TABLE_STATUS = { valid: 'table_status_valid', refreshed: 'table_status_refreshed', unavailable: 'table_status_unavailable', missing: 'table_status_missing' } as const;

export function TableStatus({ table }: { table: TableView }) {
  return (
    <div class={`table-state table-${table.status}`} data-testid="table-state">
      <strong>{t('table_heading', t(TABLE_STATUS[table.status]))}</strong>
      <p>{table.text}</p>
      {table.issuedAt ? <p class="muted">{t('table_issuedExpires', when(table.issuedAt), when(table.expiresAt))}</p> : null}
    </div>
  );
}

export function OverviewScreen() {
  const { state, topUp } = useOverview();
  const [amount, setAmount] = useState('100');
  const [error, setError] = useState<string | undefined>();
  switch (state.status) {
    case 'loading':
      return <p class="muted">{t('loading')}</p>;
    case 'error':
      return <p class="error">{errorText(state.error)}</p>;
    case 'no-account':
      return (
        <section>
          <p>{t('overview_noAccount')}</p>
          <button type="button" onClick={() => void browser.tabs.create({ url: browser.runtime.getURL('onboarding.html') })}>
            {t('overview_setUp')}
          </button>
        </section>
      );
    case 'ready': {
      const topUpError = async () => {
        const e = await topUp(amount);
        return e ? errorText(e) : undefined;
      };
      return (
        <section>
          <div class="balance">
            <span class="muted">{t('overview_balanceAt', state.operatorName)}</span>
            <div class="big" data-testid="balance">
              {state.balance ? money(state.balance) : '—'}
            </div>
            {state.held && state.held !== `${state.currency}:0.00` ? <div class="muted">{t('overview_held', money(state.held))}</div> : null}
            {state.balanceError ? <p class="error">{t('overview_balanceError', errorText(state.balanceError))}</p> : null}
          </div>
          <SpendingNotices />
          <form
            class="row"
            onSubmit={async (e) => {
              e.preventDefault();
              setError(await topUpError());
            }}
          >
            <label>
              {t('overview_topUpLabel', state.currency)} <input value={amount} onInput={(e) => setAmount(e.currentTarget.value)} size={6} />
            </label>
            <button type="submit">{t('overview_topUp')}</button>
          </form>
          {error ? <p class="error">{error}</p> : null}
          <TableStatus table={state.table} />
          <details class="ids" data-testid="account-details">
            <summary>{t('details')}</summary>
            <dl>
              <dt>{t('details_bank')}</dt>
              <dd>{state.operatorName}</dd>
              <dt>{t('details_customerId')}</dt>
              <dd data-testid="customer-id">{state.customerId}</dd>
            </dl>
          </details>
        </section>
      );
    }
  }
}
