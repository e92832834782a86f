import { useEffect, useState } from 'preact/hooks';
import type { PromptRecord } from '@obol/protocol/walletStore';
import { neutralizeBidi } from '@obol/protocol/bidi';
import { digits, money, when } from '../shared/format.ts';
import { checkLimits, useConfirm } from './state.ts';

/** The accept button wakes up after this long, so a double click meant for the page cannot land on it. */
const ARM_DELAY_MS = 600;

const TITLES: Record<PromptRecord['kind'], string> = {
  first: 'Pay this site for the first time?',
  'over-budget': 'This purchase is over the site’s budget',
  'over-auto-pay': 'This price is above your auto-pay limit',
};

function Waiting({ prompt, decide, sending }: { prompt: PromptRecord; decide: (accept: boolean, limits?: { budget: string; autoPayLimit: string }) => void; sending: boolean }) {
  const [budget, setBudget] = useState(digits(prompt.suggested.budget));
  const [auto, setAuto] = useState(digits(prompt.suggested.autoPayLimit));
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    const t = setTimeout(() => setArmed(true), ARM_DELAY_MS);
    return () => clearTimeout(t);
  }, []);
  const problem = checkLimits(prompt, budget, auto);
  const foreign = prompt.price !== prompt.priceCustomer;
  return (
    <main class="confirm">
      <h1>{TITLES[prompt.kind]}</h1>
      <div class="price" data-testid="price">
        <span class="big">{money(prompt.priceCustomer)}</span>
        {foreign ? <span class="muted"> ({money(prompt.price)} at your bank’s rate)</span> : null}
      </div>
      <p data-testid="product">
        for <strong data-testid="title">{prompt.signed ? neutralizeBidi(prompt.signed.title) : prompt.productId}</strong>
        <span class="muted"> ({prompt.productId}, title and price as the merchant signed them)</span>
      </p>
      {prompt.description ? (
        <p class="muted" data-testid="page-words">
          The page says: “{neutralizeBidi(prompt.description)}” (the page’s own words, not checked)
        </p>
      ) : null}
      <dl>
        <dt>Site</dt>
        <dd data-testid="origin">{prompt.origin}</dd>
        <dt>Merchant</dt>
        <dd>
          <strong data-testid="merchant-id">{prompt.merchantId}</strong>, certified for {prompt.certifiedOrigins.join(', ')} (certificate checked by your bank; merchant’s
          bank {prompt.merchantOperatorId}). It calls itself “{neutralizeBidi(prompt.merchantName)}”.
        </dd>
        <dt>Deposit</dt>
        <dd data-testid="deposit">
          {money(prompt.deposit.customer)}
          {prompt.deposit.merchant ? ` = ${money(prompt.deposit.merchant)}` : ''}
          {prompt.deposit.transactionId ? ' reserved at your bank' : ' to be reserved at your bank if you pay (nothing is reserved yet)'}
          {prompt.deposit.remaining ? `, ${money(prompt.deposit.remaining)} left` : ''}; what is not spent goes back when the session ends
          {prompt.deposit.expiresAt ? ` (at ${when(prompt.deposit.expiresAt)})` : ''}.
        </dd>
        {prompt.site ? (
          <>
            <dt>Budget</dt>
            <dd>
              spent {money(prompt.site.spent)} of {money(prompt.site.budget)}; auto-pay up to {money(prompt.site.autoPayLimit)}
            </dd>
          </>
        ) : null}
        <dt>Rates</dt>
        <dd class="muted">exchange table {prompt.table.status}{prompt.table.expiresAt ? `, valid until ${when(prompt.table.expiresAt)}` : ''}</dd>
      </dl>
      <fieldset>
        <legend>From now on at {prompt.origin}</legend>
        <label>
          Budget for this site ({prompt.needed.split(':')[0]}) <input aria-label="budget" value={budget} onInput={(e) => setBudget(e.currentTarget.value)} size={8} />
        </label>
        <label>
          Pay without asking up to <input aria-label="auto-pay limit" value={auto} onInput={(e) => setAuto(e.currentTarget.value)} size={8} />
        </label>
        <p class="muted">Without this window, the site can take a payment only when you click or press a key on its page: one purchase per click.</p>
        {problem ? <p class="error">{problem}</p> : null}
      </fieldset>
      <div class="row buttons">
        <button type="button" class="secondary" disabled={sending} onClick={() => decide(false)}>
          Decline
        </button>
        <button
          type="button"
          class="primary"
          disabled={!armed || sending || problem !== undefined}
          onClick={(e) => {
            if (e.isTrusted) decide(true, { budget, autoPayLimit: auto });
          }}
        >
          Pay {money(prompt.priceCustomer)}
        </button>
      </div>
    </main>
  );
}

export function ConfirmWindow({ id }: { id: string | null }) {
  const { state, decide } = useConfirm(id);
  switch (state.status) {
    case 'loading':
      return <p class="muted">Loading…</p>;
    case 'not-found':
      return <p>This request is no longer waiting.</p>;
    case 'error':
      return <p class="error">{state.error.message}</p>;
    case 'decided':
      return <p>{state.accepted ? 'Paid.' : 'Declined.'}</p>;
    case 'waiting':
    case 'sending':
      return <Waiting prompt={state.prompt} decide={(a, l) => void decide(a, l)} sending={state.status === 'sending'} />;
  }
}
