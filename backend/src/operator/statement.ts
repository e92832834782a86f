import { type MerchantStatement, STATEMENT_WINDOW_MS, type StatementDeposit } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { formatAmount, parseAmount } from '@obol/protocol/money';
import { verifyMessage } from '@obol/protocol/signed';
import { kidOf } from './accountManager.ts';
import { merchantByKid } from './acquirer.ts';
import { type OperatorContext, accounts } from './context.ts';

/** Deposits listed when the request names no limit. */
const DEFAULT_STATEMENT_LIMIT = 100;

/**
 * A merchant's statement (issue 15 item 4): answered to a `merchant.statement` signed by the
 * merchant's registered key, fresh (STATEMENT_WINDOW_MS either way) and used once — the merchant's
 * own key, never the operator's admin token, and a request that leaked cannot be played again.
 */
export async function merchantStatement(ctx: OperatorContext, body: unknown): Promise<MerchantStatement> {
  const merchant = await merchantByKid(ctx, kidOf(body));
  const request = await verifyMessage(body, 'merchant.statement', () => merchant.key, ctx.crypto);
  const r = request.body;
  if (r.merchantId !== merchant.id) throw new ObolError('UNAUTHORIZED', `this key is ${merchant.id}'s, not ${r.merchantId}'s`);
  const now = ctx.clock.now();
  if (Math.abs(now - r.time) > STATEMENT_WINDOW_MS) {
    throw new ObolError('UNAUTHORIZED', 'the request is not fresh: its time is more than five minutes from ours');
  }
  // Ids older than twice the window can no longer be replayed (their time is stale): forget them.
  await ctx.db.query('DELETE FROM merchant_statement_requests WHERE request_time < $1', [now - 2 * STATEMENT_WINDOW_MS]);
  const taken = await ctx.db.query(
    `INSERT INTO merchant_statement_requests (msg_id, merchant_id, request_time) VALUES ($1, $2, $3)
     ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id`,
    [r.msgId, merchant.id, r.time],
  );
  if (taken.length === 0) throw new ObolError('REPLAYED', `statement request ${r.msgId} was already answered`);

  const account = accounts.merchant(merchant.id);
  const balance = await ctx.ledger.balance(account);
  const [open] = await ctx.db.query<{ n: number | string; total: number | string | bigint | null }>(
    `SELECT count(*) AS n, sum(amount) AS total FROM pending_transfers WHERE credit_account = $1 AND state = 'pending'`,
    [account],
  );
  const [cleared] = await ctx.db.query<{ n: number | string }>(
    `SELECT count(*) AS n FROM acq_transactions WHERE merchant_id = $1 AND state = 'cleared'`,
    [merchant.id],
  );
  const rows = await ctx.db.query<{ id: string; state: 'open' | 'cleared' | 'failed'; deposit: string; clearing: ClearingJson | null; created_at: number | string }>(
    `SELECT id, state, deposit, clearing, created_at FROM acq_transactions
     WHERE merchant_id = $1 AND created_at >= $2 ORDER BY created_at DESC, id LIMIT $3`,
    [merchant.id, r.since ?? 0, r.limit ?? DEFAULT_STATEMENT_LIMIT],
  );
  return {
    merchantId: merchant.id,
    operatorId: ctx.config.operatorId,
    time: now,
    balances: [
      {
        currency: balance.currency,
        balance: formatAmount(balance),
        reserved: formatAmount({ currency: balance.currency, value: BigInt(open?.total ?? 0) }),
        openDeposits: Number(open?.n ?? 0),
        clearedDeposits: Number(cleared?.n ?? 0),
      },
    ],
    deposits: rows.map(depositLine),
  };
}

interface ClearingJson {
  body: { outcome: string; flagged: boolean; count: number; charged: string; unused: string; time: number };
}

function depositLine(row: { id: string; state: StatementDeposit['state']; deposit: string; clearing: ClearingJson | null; created_at: number | string }): StatementDeposit {
  const c = row.clearing?.body;
  return {
    transactionId: row.id,
    state: row.state,
    deposit: formatAmount(parseAmount(row.deposit)),
    charged: c ? c.charged : null,
    unused: c ? c.unused : null,
    count: c ? c.count : null,
    outcome: c ? c.outcome : null,
    flagged: c ? c.flagged : null,
    openedAt: Number(row.created_at),
    clearedAt: c ? c.time : null,
  };
}
