import { useState } from 'preact/hooks';
import { decodeText, money, when } from '../../shared/format.ts';
import { t } from '../../shared/i18n.ts';
import { useHistory } from './state.ts';

export function HistoryScreen() {
  const { state, exportEvidence, exportReceipts, content } = useHistory();
  const [error, setError] = useState<string | undefined>();
  const [shown, setShown] = useState<{ key: string; text: string } | undefined>();
  switch (state.status) {
    case 'loading':
      return <p class="muted">Loading…</p>;
    case 'error':
      return <p class="error">{state.error.message}</p>;
    case 'empty':
      return <p class="muted">Nothing bought yet.</p>;
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
            <h2 class="section">Receipts</h2>
            <button type="button" class="link" onClick={() => exportReceipts(h)}>
              Download all (JSON)
            </button>
          </div>
          <ul class="list">
            {h.receipts.map(({ receipt: r, merchantName, hasContent }) => {
              const key = `${r.transactionId}#${r.n}`;
              return (
                <li key={key} class="card" data-testid="receipt">
                  <div class="row between">
                    <strong>{r.productId}</strong>
                    <span>{money(r.price)}</span>
                  </div>
                  <div class="muted">
                    {merchantName} · {r.origin} · {when(r.time)}
                  </div>
                  <div class="muted">
                    {r.transactionId} #{r.n} · receipt {r.accept.body.acceptId}
                  </div>
                  <div class="row">
                    {hasContent ? (
                      <button
                        type="button"
                        class="link"
                        onClick={async () => {
                          const c = await content(r.transactionId, r.n);
                          setShown(shown?.key === key ? undefined : { key, text: c?.contentType.startsWith('text/') ? decodeText(c.content) : `(${c?.contentType ?? 'no content'})` });
                        }}
                      >
                        Show
                      </button>
                    ) : null}
                    {h.evidence ? (
                      <button type="button" class="link" onClick={async () => setError((await exportEvidence(r.transactionId, r.n))?.message)}>
                        Evidence for a dispute
                      </button>
                    ) : (
                      <span class="muted" title="The wallet's evidence export is not available in this version">
                        evidence export unavailable
                      </span>
                    )}
                  </div>
                  {shown?.key === key ? <pre class="content">{shown.text}</pre> : null}
                </li>
              );
            })}
          </ul>
          <h2 class="section">Sessions</h2>
          <ul class="list">
            {h.transactions.map((t) => (
              <li key={t.id} class="card small">
                <strong>{t.merchantName}</strong> · {t.transactionId ?? 'not opened'} · {t.state}
                {t.closeReason ? ` (${t.closeReason})` : ''} · spent {money(t.cumulative)} of {money(t.depositMerchant ?? t.depositCustomer)}
                {t.error ? <div class="error">{t.error.message}</div> : null}
              </li>
            ))}
          </ul>
          {refunds.length > 0 ? (
            <>
              <h2 class="section">{t('refund_section')}</h2>
              <ul class="list">
                {refunds.map(({ transaction, refund }) => (
                  <li key={`${transaction.transactionId}#${refund.n}`} class="card small" data-testid="refund">
                    <strong>{t('refund_line', transaction.merchantName, money(refund.amount))}</strong>
                    <div class="muted">{t('refund_detail', money(refund.amountMerchant), when(refund.time), transaction.transactionId ?? '')}</div>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h2 class="section">Activity</h2>
          <ul class="list">
            {h.activity.map((a) => (
              <li key={a.id} class="small">
                <span class="muted">{when(a.time)}</span> {a.kind} {a.origin ? `· ${a.origin}` : ''} · {a.text} {a.amount ? `· ${money(a.amount)}` : ''}
              </li>
            ))}
          </ul>
        </section>
      );
    }
  }
}
