import { money } from '../../shared/format.ts';
import { t } from '../../shared/i18n.ts';

/**
 * A receipt's amount in the shopper's currency as her bank books it (a session's receipts add up
 * to its withdrawal), with the shop's own price beside it in small print.
 */
export function ReceiptPrice({ price, priceCustomer }: { price: string; priceCustomer?: string | undefined }) {
  if (!priceCustomer || priceCustomer.split(':')[0] === price.split(':')[0]) return <span data-testid="receipt-price">{money(priceCustomer ?? price)}</span>;
  return (
    <span>
      <span data-testid="receipt-price">{money(priceCustomer)}</span> <small class="muted">{t('spend_merchantPrice', money(price))}</small>
    </span>
  );
}
