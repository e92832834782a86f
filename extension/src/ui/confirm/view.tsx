import { neutralizeBidi } from '@obol/protocol/bidi';
import type { PromptRecord } from '@obol/protocol/walletStore';
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { errorText } from '../shared/errorText.ts';
import { currencyOf, digits, money, when } from '../shared/format.ts';
import { type MessageKey, t } from '../shared/i18n.ts';
import { checkLimits, useConfirm } from './state.ts';

/** The accept button wakes up after this long, so a double click meant for the page cannot land on it. */
const ARM_DELAY_MS = 600;

/**
 * Performance marks (User Timing) the browser bench reads (e2e/bench/clickToContent.bench.spec.ts):
 * when the window first shows the prompt with its Pay button — the machine's work before the
 * shopper can answer ends there — and when the button arms (the deliberate delay is the human's share).
 */
const SHOWN_MARK = 'obol:confirm-shown';
const ARMED_MARK = 'obol:confirm-armed';

const TITLES: Record<PromptRecord['kind'], MessageKey> = {
  first: 'confirm_title_first',
  'over-budget': 'confirm_title_overBudget',
  'over-auto-pay': 'confirm_title_overAutoPay',
};

const TABLE_STATUS: Record<string, MessageKey> = {
  valid: 'table_status_valid',
  refreshed: 'table_status_refreshed',
  unavailable: 'table_status_unavailable',
  missing: 'table_status_missing',
};

function Waiting({ prompt, decide, sending }: { prompt: PromptRecord; decide: (accept: boolean, limits?: { budget: string; autoPayLimit: string }) => void; sending: boolean }) {
  const [budget, setBudget] = useState(digits(prompt.suggested.budget));
  const [auto, setAuto] = useState(digits(prompt.suggested.autoPayLimit));
  const [armed, setArmed] = useState(false);
  useLayoutEffect(() => {
    performance.mark(SHOWN_MARK);
  }, []);
  useEffect(() => {
    const timer = setTimeout(() => {
      performance.mark(ARMED_MARK);
      setArmed(true);
    }, ARM_DELAY_MS);
    return () => clearTimeout(timer);
  }, []);
  const problem = checkLimits(prompt, budget, auto);
  const foreign = prompt.price !== prompt.priceCustomer;
  const currency = currencyOf(prompt.needed);
  const bank = prompt.bankName ?? t('confirm_yourBankUnnamed');
  const merchantBank = prompt.merchantOperatorName ? t('confirm_merchantBankSame', prompt.merchantOperatorName) : t('confirm_merchantBankOther');
  const tableStatus = TABLE_STATUS[prompt.table.status];
  return (
    <main class="confirm">
      <h1>{t(TITLES[prompt.kind])}</h1>
      <div class="price" data-testid="price">
        <span class="big">{money(prompt.priceCustomer)}</span>
        {foreign ? <span class="muted"> {t('confirm_atYourBanksRate', money(prompt.price), bank)}</span> : null}
      </div>
      <p data-testid="product">
        {t('confirm_for')} <strong data-testid="title">{prompt.signed ? neutralizeBidi(prompt.signed.title) : prompt.productId}</strong>
        <span class="muted"> {t('confirm_signedByMerchant')}</span>
      </p>
      {prompt.description ? (
        <p class="muted" data-testid="page-words">
          {t('confirm_pageSays', neutralizeBidi(prompt.description))}
        </p>
      ) : null}
      <dl>
        <dt>{t('confirm_site')}</dt>
        <dd data-testid="origin">{prompt.origin}</dd>
        <dt>{t('confirm_merchant')}</dt>
        <dd>
          <strong data-testid="merchant-id">{prompt.merchantId}</strong>{' '}
          {t('confirm_certified', prompt.certifiedOrigins.join(', '), bank, merchantBank, neutralizeBidi(prompt.merchantName))}
        </dd>
        <dt>{t('confirm_deposit')}</dt>
        <dd data-testid="deposit">
          {money(prompt.deposit.customer)}
          {prompt.deposit.merchant && prompt.deposit.merchant !== prompt.deposit.customer ? ` = ${money(prompt.deposit.merchant)}` : ''}{' '}
          {prompt.deposit.transactionId ? t('confirm_depositReserved', bank) : t('confirm_depositToReserve', bank)}
          {prompt.deposit.remaining ? t('confirm_depositLeft', money(prompt.deposit.remaining)) : ''}. {t('confirm_depositBack')}
          {prompt.deposit.expiresAt ? ` ${t('confirm_depositEnds', when(prompt.deposit.expiresAt))}` : ''}.
        </dd>
        {prompt.site ? (
          <>
            <dt>{t('confirm_budget')}</dt>
            <dd data-testid="site-budget">{t('confirm_budgetNow', money(prompt.site.spent), money(prompt.site.budget), money(prompt.site.autoPayLimit))}</dd>
          </>
        ) : null}
        <dt>{t('confirm_rates')}</dt>
        <dd class="muted">
          {t('confirm_table', tableStatus ? t(tableStatus) : prompt.table.status)}
          {prompt.table.expiresAt ? t('confirm_tableValidUntil', when(prompt.table.expiresAt)) : ''}
        </dd>
      </dl>
      <fieldset>
        <legend>{t('confirm_fromNowOn', prompt.origin)}</legend>
        <label>
          {t('confirm_budgetField', currency)} <input value={budget} onInput={(e) => setBudget(e.currentTarget.value)} size={8} inputMode="decimal" />
        </label>
        <label>
          {t('confirm_autoPayField', currency)} <input value={auto} onInput={(e) => setAuto(e.currentTarget.value)} size={8} inputMode="decimal" aria-describedby="auto-pay-means" />
        </label>
        <p class="muted" id="auto-pay-means">
          {t('confirm_autoPayMeans')}
        </p>
        <p class="muted">{t('confirm_gestureOnly')}</p>
        {problem ? <p class="error">{problem}</p> : null}
      </fieldset>
      <div class="row buttons">
        <button type="button" class="secondary" disabled={sending} onClick={() => decide(false)}>
          {t('confirm_decline')}
        </button>
        <button
          type="button"
          class="primary"
          disabled={!armed || sending || problem !== undefined}
          onClick={(e) => {
            if (e.isTrusted) decide(true, { budget, autoPayLimit: auto });
          }}
        >
          {t('confirm_pay', money(prompt.priceCustomer))}
        </button>
      </div>
      <details class="ids">
        <summary>{t('details')}</summary>
        <dl>
          <dt>{t('details_product')}</dt>
          <dd data-testid="product-id">{prompt.productId}</dd>
          <dt>{t('details_merchantBank')}</dt>
          <dd>{prompt.merchantOperatorId}</dd>
          {prompt.deposit.transactionId ? (
            <>
              <dt>{t('details_session')}</dt>
              <dd>{prompt.deposit.transactionId}</dd>
            </>
          ) : null}
        </dl>
      </details>
    </main>
  );
}

export function ConfirmWindow({ id }: { id: string | null }) {
  const { state, decide } = useConfirm(id);
  switch (state.status) {
    case 'loading':
      return <p class="muted">{t('loading')}</p>;
    case 'not-found':
      return <p>{t('confirm_notWaiting')}</p>;
    case 'error':
      return <p class="error">{errorText(state.error)}</p>;
    case 'decided':
      return <p>{state.accepted ? t('confirm_paid') : t('confirm_youDeclined')}</p>;
    case 'waiting':
    case 'sending':
      return <Waiting prompt={state.prompt} decide={(a, l) => void decide(a, l)} sending={state.status === 'sending'} />;
  }
}
