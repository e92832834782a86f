import { fileNameFor } from '@obol/protocol/fileName';
import type { ActivityRecord, StopReason, TransactionState } from '@obol/protocol/walletStore';
import { useState } from 'preact/hooks';
import { errorText } from '../../shared/errorText.ts';
import { decodeBytes, decodeText, downloadBlob, money, when } from '../../shared/format.ts';
import { type MessageKey, t } from '../../shared/i18n.ts';
import { useHistory } from './state.ts';
import { ReceiptPrice } from './ReceiptPrice.tsx';

const SESSION_STATE: Record<TransactionState, MessageKey> = {
  initiating: 'session_state_initiating',
  open: 'session_state_open',
  closed: 'session_state_closed',
  reported: 'session_state_reported',
  cleared: 'session_state_cleared',
  failed: 'session_state_failed',
};

const CLOSE_REASON: Record<StopReason, MessageKey> = {
  wallet: 'session_reason_wallet',
  merchant: 'session_reason_merchant',
  'deposit-used': 'session_reason_depositUsed',
  timer: 'session_reason_timer',
};

const ACTIVITY: Record<ActivityRecord['kind'], MessageKey> = {
  registered: 'activity_registered',
  'top-up': 'activity_topUp',
  paid: 'activity_paid',
  rejected: 'activity_rejected',
  failed: 'activity_failed',
  'session-ended': 'activity_sessionEnded',
  'site-changed': 'activity_siteChanged',
};

/** The media type without its parameters: "text/markdown; charset=utf-8" → "text/markdown". */
const mediaType = (contentType: string) => (contentType.split(';')[0] ?? '').trim().toLowerCase();

export function HistoryScreen() {
  const { state, exportEvidence, exportReceipts, content } = useHistory();
  const [error, setError] = useState<string | undefined>();
  const [shown, setShown] = useState<{ key: string; text: string } | undefined>();
  switch (state.status) {
    case 'loading':
      return <p class="muted">{t('loading')}</p>;
    case 'error':
      return <p class="error">{errorText(state.error)}</p>;
    case 'empty':
      return <p class="muted">{t('history_empty')}</p>;
    case 'ready': {
      const h = state.history;
      // Refunds after clearing, newest first, each in the shopper's currency as her operator booked it.
      const refunds = h.transactions
        .flatMap((transaction) => (transaction.refunds ?? []).map((refund) => ({ transaction, refund })))
        .sort((a, b) => b.refund.time - a.refund.time);
      return (
        <section>
          {error ? <p class="error">{error}</p> : null}
          <div class="row between">
            <h2 class="section">{t('history_receipts')}</h2>
            <button type="button" class="link" onClick={() => exportReceipts(h)}>
              {t('history_downloadAll')}
            </button>
          </div>
          <ul class="list">
            {h.receipts.map(({ receipt: r, merchantName, hasContent, priceCustomer }) => {
              const key = `${r.transactionId}#${r.n}`;
              const type = mediaType(r.contentType);
              const filename = fileNameFor(r.productId, type);
              return (
                <li key={key} class="card" data-testid="receipt">
                  <div class="row between">
                    <strong data-testid="receipt-title">{r.title || r.productId}</strong>
                    <ReceiptPrice price={r.price} priceCustomer={priceCustomer} />
                  </div>
                  <div class="muted">
                    {merchantName} · {r.origin} · {when(r.time)}
                  </div>
                  <div class="row">
                    {hasContent && type === 'text/plain' ? (
                      <button
                        type="button"
                        class="link"
                        onClick={async () => {
                          const c = await content(r.transactionId, r.n);
                          setShown(shown?.key === key ? undefined : { key, text: c ? decodeText(c.content) : t('history_noContent') });
                        }}
                      >
                        {t('history_show')}
                      </button>
                    ) : null}
                    {hasContent ? (
                      // A delivered file (a Markdown or text document too) is saved under its name.
                      <button
                        type="button"
                        class="link"
                        onClick={async () => {
                          const c = await content(r.transactionId, r.n);
                          if (c) downloadBlob(filename, new Blob([decodeBytes(c.content)], { type: c.contentType }));
                          else setError(t('history_noContent'));
                        }}
                      >
                        {t('history_download', filename)}
                      </button>
                    ) : null}
                    {h.evidence ? (
                      <button
                        type="button"
                        class="link"
                        onClick={async () => {
                          const e = await exportEvidence(r.transactionId, r.n);
                          setError(e ? errorText(e) : undefined);
                        }}
                      >
                        {t('history_evidence')}
                      </button>
                    ) : (
                      <span class="muted" title={t('history_evidenceUnavailableWhy')}>
                        {t('history_evidenceUnavailable')}
                      </span>
                    )}
                  </div>
                  {shown?.key === key ? <pre class="content">{shown.text}</pre> : null}
                  <details class="ids">
                    <summary>{t('details')}</summary>
                    <dl>
                      <dt>{t('details_product')}</dt>
                      <dd>{r.productId}</dd>
                      <dt>{t('details_merchant')}</dt>
                      <dd>{r.merchantId}</dd>
                      <dt>{t('details_session')}</dt>
                      <dd data-testid="receipt-transaction">
                        {r.transactionId} #{r.n}
                      </dd>
                      <dt>{t('details_receipt')}</dt>
                      <dd>{r.receiptId}</dd>
                    </dl>
                  </details>
                </li>
              );
            })}
          </ul>
          <h2 class="section">{t('history_sessions')}</h2>
          <ul class="list">
            {h.transactions.map((tx) => (
              <li key={tx.id} class="card small" data-testid="history-session">
                <strong>{tx.merchantName}</strong> · {t(SESSION_STATE[tx.state])}
                {tx.closeReason ? ` (${t(CLOSE_REASON[tx.closeReason])})` : ''} · {t('history_spentOf', money(tx.total ?? tx.cumulative), money(tx.depositMerchant ?? tx.depositCustomer))}
                {tx.error ? <div class="error">{errorText(tx.error)}</div> : null}
                <details class="ids">
                  <summary>{t('details')}</summary>
                  <dl>
                    <dt>{t('details_session')}</dt>
                    <dd>{tx.transactionId ?? t('history_notOpened')}</dd>
                    <dt>{t('details_merchant')}</dt>
                    <dd>{tx.merchantId}</dd>
                  </dl>
                </details>
              </li>
            ))}
          </ul>
          {refunds.length > 0 ? (
            <>
              <h2 class="section">{t('refund_section')}</h2>
              <ul class="list">
                {refunds.map(({ transaction, refund }) => (
                  <li key={`${transaction.id}#${refund.beforeClearing?.refundId ?? refund.n}`} class="card small" data-testid="refund">
                    <strong>{t('refund_line', transaction.merchantName, money(refund.amount))}</strong>
                    <div class="muted">{t('refund_detail', money(refund.amountMerchant), when(refund.time))}</div>
                    {refund.beforeClearing ? <div class="muted">{t('refund_beforeClearing')}</div> : null}
                    <details class="ids">
                      <summary>{t('details')}</summary>
                      <dl>
                        <dt>{t('details_session')}</dt>
                        <dd>{transaction.transactionId ?? ''}</dd>
                      </dl>
                    </details>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h2 class="section">{t('history_activity')}</h2>
          <ul class="list">
            {h.activity.map((a) => (
              <li key={a.id} class="small" title={a.text}>
                <span class="muted">{when(a.time)}</span> {t(ACTIVITY[a.kind])}
                {a.subject ? `: ${a.subject}` : ''} {a.origin ? `· ${a.origin}` : ''} {a.amount ? `· ${money(a.amount)}` : ''}
              </li>
            ))}
          </ul>
        </section>
      );
    }
  }
}
