import { type Amount, compare, max, min, zero } from './money.ts';

/**
 * FIG 3 step 10: what the merchant is paid when a transaction is cleared. The rules that keep
 * money safe (DESIGN.md): never more than the highest cumulative amount the customer signed,
 * never more than the deposit; records that disagree settle at the proven amount and are flagged;
 * a wallet that never reports is settled on the merchant's proof; a merchant that never reports
 * lets the deposit go back to the customer.
 */
export interface ClearingInput {
  deposit: Amount;
  /** The wallet's record, if it reported: its signed total and the hash of its purchase list. */
  wallet?: { total: Amount; count: number; purchasesHash: string };
  /** The merchant's record, if it reported, with the cumulative of the customer-signed accept it holds as proof. */
  merchant?: { total: Amount; count: number; purchasesHash: string; provenCumulative?: Amount; provenCount?: number };
  /** True when the reporting deadline has passed. */
  deadlinePassed: boolean;
}

export type ClearingOutcome = 'agreed' | 'proven' | 'wallet-deadline' | 'merchant-deadline';

export interface ClearingDecision {
  outcome: ClearingOutcome;
  charged: Amount;
  unused: Amount;
  count: number;
  flagged: boolean;
}

/** Undefined while the transaction cannot be cleared yet (a record missing and the deadline not passed). */
export function decideClearing(input: ClearingInput): ClearingDecision | undefined {
  const { deposit, wallet, merchant } = input;
  const none = zero(deposit.currency);
  const cap = (a: Amount) => min(max(a, none), deposit);
  const done = (outcome: ClearingOutcome, charged: Amount, count: number, flagged: boolean): ClearingDecision => {
    const c = cap(charged);
    return { outcome, charged: c, unused: { currency: deposit.currency, value: deposit.value - c.value }, count, flagged };
  };

  if (wallet && merchant) {
    // One rule for the list's hash on both sides (recordPurchasesHash, purchaseList.ts): an empty
    // list is the same constant for wallet and merchant, so the hashes are compared as they are.
    const agree = compare(wallet.total, merchant.total) === 0 && wallet.count === merchant.count && wallet.purchasesHash === merchant.purchasesHash;
    if (agree) return done('agreed', merchant.total, merchant.count, false);
    // The proven amount: the highest cumulative the customer signed, in its record or its accepts.
    const proven = merchant.provenCumulative ? max(wallet.total, merchant.provenCumulative) : wallet.total;
    const charged = min(merchant.total, proven);
    const count = compare(charged, wallet.total) === 0 ? wallet.count : (merchant.provenCount ?? wallet.count);
    return done('proven', charged, count, true);
  }
  if (!input.deadlinePassed) return undefined;
  if (merchant) {
    // The wallet never reported: the merchant is paid what the customer's accept proves, no more.
    const proven = merchant.provenCumulative ?? none;
    const charged = min(merchant.total, proven);
    return done('wallet-deadline', charged, merchant.provenCount ?? 0, compare(charged, merchant.total) !== 0);
  }
  // The merchant never reported (with or without the wallet's record): the deposit goes back.
  return done('merchant-deadline', none, 0, false);
}
