import type { SessionSummary } from '@obol/protocol/customerAgent/figures';
import { money } from '../../shared/format.ts';
import { t } from '../../shared/i18n.ts';

/**
 * What ending a session shows: spent, back to the balance, the receipts — in the shopper's
 * currency by the rule her bank books the session by, so these are the withdrawal record's figures
 * to the minor unit; the shop's total and the pinned rate in small print.
 */
export function SessionSummaryCard({ summary, onClose }: { summary: SessionSummary; onClose: () => void }) {
  return (
    <section class="card" aria-label={t('spend_summaryTitle', summary.merchantName)} data-testid="session-summary">
      <h2>{t('spend_summaryTitle', summary.merchantName)}</h2>
      <div class="row between">
        <span>{t('spend_summarySpent')}</span>
        <strong data-testid="summary-spent">{money(summary.spent)}</strong>
      </div>
      <div class="row between">
        <span>{t('spend_summaryReturned')}</span>
        <strong data-testid="summary-returned">{money(summary.returned)}</strong>
      </div>
      <p>{t('spend_summaryReceipts', summary.receipts.length)}</p>
      <ul class="list">
        {summary.receipts.map((r) => (
          <li key={r.n} class="row between" data-testid="summary-receipt">
            <span>{r.title}</span>
            <span>
              <span data-testid="summary-receipt-price">{money(r.priceCustomer)}</span> <small class="muted">{t('spend_merchantPrice', money(r.price))}</small>
            </span>
          </li>
        ))}
      </ul>
      {summary.rate ? <small class="muted">{t('spend_summaryMerchant', money(summary.spentMerchant), summary.rate)}</small> : null}
      <button type="button" onClick={onClose}>
        {t('spend_close')}
      </button>
    </section>
  );
}
