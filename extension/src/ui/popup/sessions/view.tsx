import { useState } from 'preact/hooks';
import { money, timeLeft } from '../../shared/format.ts';
import { useNow } from '../../shared/hooks.ts';
import { SessionSummaryCard } from './SessionSummary.tsx';
import { useSessions } from './state.ts';

export function SessionsScreen() {
  const { state, end, summary, closeSummary } = useSessions();
  const ended = summary ? <SessionSummaryCard summary={summary} onClose={closeSummary} /> : null;
  const now = useNow();
  const [error, setError] = useState<string | undefined>();
  const [ending, setEnding] = useState<string | undefined>();
  switch (state.status) {
    case 'loading':
      return <p class="muted">Loading…</p>;
    case 'error':
      return <p class="error">{state.error.message}</p>;
    case 'empty':
      return (
        <>
          {ended}
          <p class="muted" data-testid="no-sessions">No open trading sessions.</p>
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
                  Deposit left: <span data-testid="deposit-left">{money(s.remaining)}</span>
                  {' '}of {money(s.depositMerchant ?? s.depositCustomer)}
                </div>
                {s.remainingCustomer && s.spentCustomer ? (
                  // The core's figures, by the rule the bank books the session by: exact, not an estimate.
                  <div class="muted">
                    Spent <span data-testid="spent-customer">{money(s.spentCustomer)}</span>; <span data-testid="refund-customer">{money(s.remainingCustomer)}</span> comes back if it ends now
                  </div>
                ) : null}
                <div>
                  {s.count} purchase{s.count === 1 ? '' : 's'} · time left <span data-testid="time-left">{timeLeft(s.expiresAt, now)}</span>
                  {s.state === 'initiating' ? ' · opening…' : ''}
                </div>
                {s.transactionId ? (
                  <button
                    type="button"
                    disabled={ending === s.transactionId}
                    onClick={async () => {
                      setEnding(s.transactionId);
                      setError((await end(s.transactionId as string))?.message);
                      setEnding(undefined);
                    }}
                  >
                    End
                  </button>
                ) : null}
              </li>
            ))}
          </ul>
        </section>
      );
  }
}
