import { parseRate, settleDeposit } from '../exchangeTable.ts';
import { type Amount, amount, formatAmount, parseAmount, sub, zero } from '../money.ts';

/**
 * The shopper's figures, in her own currency, all derived from the one rule the bank books a
 * session by (`settleDeposit`: the merchant-currency total converted back half-even at the pinned
 * rate, never more than the deposit). Nothing here rounds on its own: a purchase's figure is the
 * step the bank's figure takes when that purchase is added to the session's total, so the figures
 * of a session's receipts add up to its withdrawal record to the minor unit (they telescope), and
 * spent + returned is the deposit.
 */

/** What a session of `depositCustomer` at `rate` has cost the shopper once `cumulative` (merchant currency) is spent. */
export function spentInCustomerCurrency(depositCustomer: string, rate: string, cumulative: string): Amount {
  return settleDeposit(parseAmount(depositCustomer), parseAmount(cumulative), parseRate(rate)).chargedCustomer;
}

/**
 * One purchase in the shopper's currency: the bank's figure for the session after it (its
 * accept's `cumulative`) less the figure before it. At most one minor unit from the price
 * converted on its own; the sum over a session is exactly what the bank withdraws.
 */
export function purchaseInCustomerCurrency(depositCustomer: string, rate: string, cumulativeAfter: string, price: string): Amount {
  const after = parseAmount(cumulativeAfter);
  const before = sub(after, parseAmount(price));
  return sub(spentInCustomerCurrency(depositCustomer, rate, formatAmount(after)), spentInCustomerCurrency(depositCustomer, rate, formatAmount(before)));
}

/** What ending a session shows: spent, returned, the receipts — in the shopper's currency, as the bank books it. */
export interface SessionSummary {
  transactionId: string;
  merchantName: string;
  /** The deposit, customer currency. */
  deposit: string;
  spent: string;
  returned: string;
  /** The merchant's figures (small print): total accepted and the pinned rate. */
  spentMerchant: string;
  rate?: string;
  receipts: Array<{ n: number; productId: string; title: string; price: string; priceCustomer: string }>;
}

/** The summary of a session from its deposit, rate, total and its purchases (n, price in merchant currency). */
export function sessionSummary(
  /** `total`: what the record reports when refund lines before clearing lower `cumulative` (absent: `cumulative`). */
  session: { transactionId: string; merchantName: string; depositCustomer: string; rate?: string; cumulative: string; total?: string },
  /** `cumulative`: the total the purchase's accept signed (the running sum of prices when absent). */
  purchases: Array<{ n: number; productId: string; title: string; price: string; cumulative?: string }>,
): SessionSummary {
  const deposit = parseAmount(session.depositCustomer);
  const ordered = [...purchases].sort((a, b) => a.n - b.n);
  let running: Amount | undefined;
  const receipts = ordered.map((p) => {
    const price = parseAmount(p.price);
    running = p.cumulative !== undefined ? parseAmount(p.cumulative) : running ? amount(running.currency, running.value + price.value) : price;
    const priceCustomer = session.rate
      ? purchaseInCustomerCurrency(session.depositCustomer, session.rate, formatAmount(running), p.price)
      : price; // no rate: the session never opened, and nothing was bought
    return { n: p.n, productId: p.productId, title: p.title, price: p.price, priceCustomer: formatAmount(priceCustomer) };
  });
  const total = session.total ?? session.cumulative;
  const spent = session.rate ? spentInCustomerCurrency(session.depositCustomer, session.rate, total) : zero(deposit.currency);
  const summary: SessionSummary = {
    transactionId: session.transactionId,
    merchantName: session.merchantName,
    deposit: formatAmount(deposit),
    spent: formatAmount(spent),
    returned: formatAmount(sub(deposit, spent)),
    spentMerchant: total,
    receipts,
  };
  if (session.rate) summary.rate = session.rate;
  return summary;
}

/**
 * Refund lines before clearing in the shopper's currency, by the same rule: each is the step the
 * bank's figure for the session takes when that line comes off the total, taken from the accepted
 * cumulative down in the order given, so together they are exactly what the lowered total saves her
 * at clearing (spent at `cumulative` less spent at `cumulative` minus the lines).
 */
export function refundLinesInCustomerCurrency(depositCustomer: string, rate: string, cumulative: string, amounts: readonly string[]): Amount[] {
  let total = parseAmount(cumulative);
  return amounts.map((a) => {
    const after = sub(total, parseAmount(a));
    const figure = sub(spentInCustomerCurrency(depositCustomer, rate, formatAmount(total)), spentInCustomerCurrency(depositCustomer, rate, formatAmount(after)));
    total = after;
    return figure;
  });
}
