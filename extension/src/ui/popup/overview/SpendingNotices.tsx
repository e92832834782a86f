import { money } from '../../shared/format.ts';
import { useWallet } from '../../shared/hooks.ts';
import { t } from '../../shared/i18n.ts';

/**
 * The low-balance notice (the next session's deposit would not fit in what is available) and the
 * purchases waiting for a top-up: they go through by themselves once the shopper tops up.
 */
export function SpendingNotices() {
  const [loaded] = useWallet('overview', {});
  if (loaded.status !== 'ready') return null;
  const { lowBalance, needsTopUp } = loaded.data;
  return (
    <>
      {needsTopUp?.map((p) => (
        <p key={`${p.origin} ${p.productId}`} class="notice" role="alert" data-testid="needs-top-up">
          {t('spend_needsTopUp', p.title ?? p.productId, p.origin, money(p.priceCustomer ?? p.price))}
        </p>
      ))}
      {lowBalance ? (
        <p class="notice" role="status" data-testid="low-balance">
          {t('spend_lowBalance', money(lowBalance.available), money(lowBalance.deposit))}
        </p>
      ) : null}
    </>
  );
}
