import { useState } from 'preact/hooks';
import { errorText } from '../../shared/errorText.ts';
import { money, timeLeft } from '../../shared/format.ts';
import { useNow } from '../../shared/hooks.ts';
import { SessionSummaryCard } from './SessionSummary.tsx';
import { t } from '../../shared/i18n.ts';
import { useSessions } from './state.ts';

export function SessionsScreen() {
  const { state, end, summary, closeSummary } = useSessions();
  const ended = summary ? <SessionSummaryCard summary={summary} onClose={closeSummary} /> : null;
  const now = useNow();
  const [error, setError] = useState<string | undefined>();
  const [ending, setEnding] = useState<string | undefined>();
  switch (state.status) {
    case 'loading':
      return <p class="muted">{t('loading')}</p>;
    case 'error':
      return <p class="error">{errorText(state.error)}</p>;
    case 'empty':
      return (
        <>
          {ended}
          <p class="muted" data-testid="no-sessions">
            {t('sessions_none')}
          </p>
        </>
      );
    case 'ready':
      return (
        <section>
          {ended}
          {error ? <p class="error">{error}</p> : null}
          <ul class="list">
            {state.sessions.map((s) => (
              <li key={s.id} class="card" data-testid="session">
                <div class="row between">
                  <strong>{s.merchantName}</strong>
                  <span class="muted">{s.origin ?? s.merchantUrl}</span>
                </div>
                <div>
                  {t('sessions_depositLeft')} <span data-testid="deposit-left">{money(s.remaining)}</span> {t('sessions_ofDeposit', money(s.depositMerchant ?? s.depositCustomer))}
                </div>
                {s.remainingCustomer && s.spentCustomer ? (
                  // The core's figures, by the rule the bank books the session by: exact, not an estimate.
                  <div class="muted">
                    {t('sessions_spent')} <span data-testid="spent-customer">{money(s.spentCustomer)}</span>;{' '}
                    <span data-testid="refund-customer">{money(s.remainingCustomer)}</span> {t('sessions_comesBack')}
                  </div>
                ) : null}
                <div>
                  {s.count === 1 ? t('sessions_onePurchase') : t('sessions_purchases', s.count)} · {t('sessions_timeLeft')}{' '}
                  <span data-testid="time-left">{timeLeft(s.expiresAt, now)}</span>
                  {s.state === 'initiating' ? ` · ${t('sessions_opening')}` : ''}
                </div>
                {s.transactionId ? (
                  <button
                    type="button"
                    disabled={ending === s.transactionId}
                    onClick={async () => {
                      setEnding(s.transactionId);
                      const e = await end(s.transactionId as string);
                      setError(e ? errorText(e) : undefined);
                      setEnding(undefined);
                    }}
                  >
                    {t('sessions_end')}
                  </button>
                ) : null}
                <details class="ids">
                  <summary>{t('details')}</summary>
                  <dl>
                    <dt>{t('details_session')}</dt>
                    <dd data-testid="session-id">{s.transactionId ?? t('history_notOpened')}</dd>
                    <dt>{t('details_merchant')}</dt>
                    <dd>{s.merchantId}</dd>
                  </dl>
                </details>
              </li>
            ))}
          </ul>
        </section>
      );
  }
}
