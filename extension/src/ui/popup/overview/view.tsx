import { useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { money, when } from '../../shared/format.ts';
import { SpendingNotices } from './SpendingNotices.tsx';
import { type TableView, useOverview } from './state.ts';

export function TableStatus({ table }: { table: TableView }) {
  return (
    <div class={`table-state table-${table.status}`} data-testid="table-state">
      <strong>Exchange table: {table.status}</strong>
      <p>{table.text}</p>
      {table.issuedAt ? (
        <p class="muted">
          issued {when(table.issuedAt)} · expires {when(table.expiresAt)}
        </p>
      ) : null}
    </div>
  );
}

export function OverviewScreen() {
  const { state, topUp } = useOverview();
  const [amount, setAmount] = useState('100');
  const [error, setError] = useState<string | undefined>();
  switch (state.status) {
    case 'loading':
      return <p class="muted">Loading…</p>;
    case 'error':
      return <p class="error">{state.error.message}</p>;
    case 'no-account':
      return (
        <section>
          <p>This wallet has no account yet.</p>
          <button type="button" onClick={() => void browser.tabs.create({ url: browser.runtime.getURL('onboarding.html') })}>
            Set up the wallet
          </button>
        </section>
      );
    case 'ready':
      return (
        <section>
          <div class="balance">
            <span class="muted">Balance at {state.operatorName}</span>
            <div class="big" data-testid="balance">
              {state.balance ? money(state.balance) : '—'}
            </div>
            {state.held && state.held !== `${state.currency}:0.00` ? <div class="muted">held in deposits: {money(state.held)}</div> : null}
            {state.balanceError ? <p class="error">Could not read the balance: {state.balanceError.message}</p> : null}
          </div>
          <SpendingNotices />
          <form
            class="row"
            onSubmit={async (e) => {
              e.preventDefault();
              setError((await topUp(amount))?.message);
            }}
          >
            <label>
              Demo top-up ({state.currency}) <input value={amount} onInput={(e) => setAmount(e.currentTarget.value)} size={6} />
            </label>
            <button type="submit">Top up</button>
          </form>
          {error ? <p class="error">{error}</p> : null}
          <TableStatus table={state.table} />
          <p class="muted">Account {state.customerId}</p>
        </section>
      );
  }
}
