import {
  CreditLimitRequest,
  FundRequest,
  OperatorPaths,
  RegisterMerchantRequest,
} from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { keyIdOf } from '@obol/protocol/keys';
import { formatAmount, parseAmount } from '@obol/protocol/money';
import { checkSchema } from '@obol/protocol/messages';
import { certToBase64, issueMerchantCert } from '@obol/protocol/pki';
import { randomId } from '@obol/protocol/webcrypto';
import type { FastifyPluginAsync } from 'fastify';
import { fund, releaseStalledInitiations } from './accountManager.ts';
import { settleDeadlines } from './acquirer.ts';
import { type OperatorContext, accounts, requireAdmin } from './context.ts';
import { findCustomer } from './customers.ts';
import { auditRefunds } from './refunds.ts';
import { isUniqueViolation } from '../store/db.ts';
import type { AdminGuard } from '../http/rateLimit.ts';
import { IdempotencyKeys } from '../http/idempotency.ts';

/** The operator's own administration: merchants, funding, limits, balances, audit, positions. */
export const admin: FastifyPluginAsync<{ guard: AdminGuard }> = async (app, opts) => {
  const ctx = app.obol;
  // Rate limit and wrong-token lockout per client around the token check (rateLimit.ts).
  app.addHook('onRequest', async (req, reply) => opts.guard.guard(req, reply, () => requireAdmin(ctx, req.headers.authorization)));

  // Every call that changes something takes an `Idempotency-Key` (idempotency.ts): a retried
  // funding funds once.
  const idempotency = new IdempotencyKeys(ctx.db, ctx.clock);

  app.post(OperatorPaths.adminMerchants, async (req, reply) =>
    idempotency.run(req, reply, async () => {
      checkSchema(RegisterMerchantRequest, req.body, 'merchant registration');
      return registerMerchant(ctx, req.body);
    }),
  );

  app.post(OperatorPaths.adminFund, async (req, reply) => idempotency.run(req, reply, async () => {
    checkSchema(FundRequest, req.body, 'funding');
    const amount = parseAmount(req.body.amount);
    if (amount.currency !== ctx.config.currency) throw new ObolError('CURRENCY_MISMATCH', `accounts here are in ${ctx.config.currency}`);
    if (!(await findCustomer(ctx, req.body.customerId))) throw new ObolError('NO_WALLET_ACCOUNT', 'no such customer');
    await fund(ctx, req.body.customerId, amount, `fund:${randomId()}`);
    return { account: accounts.customer(req.body.customerId), balance: formatAmount(await ctx.ledger.balance(accounts.customer(req.body.customerId))) };
  }));

  app.post(OperatorPaths.adminCreditLimit, async (req, reply) => idempotency.run(req, reply, async () => {
    checkSchema(CreditLimitRequest, req.body, 'credit limit');
    const limit = parseAmount(req.body.limit);
    const account = await ctx.ledger.account(req.body.accountId);
    if (limit.currency !== account.currency) throw new ObolError('CURRENCY_MISMATCH', `${account.id} is in ${account.currency}`);
    const updated = await ctx.ledger.setCreditLimit(account.id, limit.value);
    return { account: updated.id, creditLimit: formatAmount({ currency: updated.currency, value: updated.creditLimit ?? 0n }) };
  }));

  app.get(OperatorPaths.adminBalances, async () => balances(ctx));
  app.get(OperatorPaths.adminAudit, async () => audit(ctx));
  app.get(OperatorPaths.adminPositions, async () => positions(ctx));
  app.post(OperatorPaths.adminSettleDeadlines, async (req, reply) =>
    idempotency.run(req, reply, async () => ({
      ...(await settleDeadlines(ctx)),
      releasedInitiations: await releaseStalledInitiations(ctx),
    })),
  );
};

export async function registerMerchant(ctx: OperatorContext, req: { merchantId: string; publicKey: string; origins: string[]; url: string; name?: string }) {
  const now = ctx.clock.now();
  const keyId = await keyIdOf(req.publicKey);
  await ctx.keys.addSpki(req.publicKey);
  const cert = certToBase64(
    await issueMerchantCert({
      merchantId: req.merchantId,
      origins: req.origins,
      publicKey: req.publicKey,
      issuer: ctx.identity.issuer,
      notBefore: now - 60_000,
      notAfter: now + 365 * 86_400_000,
    }),
  );
  await ctx.db.transaction(
    async (tx) => {
      // A key is one merchant's: another merchant's key would let either sign as the other.
      const [holder] = await tx.query<{ id: string }>('SELECT id FROM merchants WHERE key_id = $1 AND id <> $2', [keyId, req.merchantId]);
      if (holder) throw new ObolError('CONFLICT', 'that public key is already registered for another merchant');
      // Registering again (a restarted shop) replaces the key, origins and URL.
      await tx.query(
        `INSERT INTO merchants (id, public_key, key_id, origins, url, name, cert, created_at)
         VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET public_key = EXCLUDED.public_key, key_id = EXCLUDED.key_id, origins = EXCLUDED.origins,
           url = EXCLUDED.url, name = EXCLUDED.name, cert = EXCLUDED.cert`,
        [req.merchantId, req.publicKey, keyId, JSON.stringify(req.origins), req.url.replace(/\/$/, ''), req.name ?? req.merchantId, cert, now],
      ).catch((e: unknown) => {
        // Two registrations racing for one key: the loser is told the same.
        if (isUniqueViolation(e, 'merchants_key_id_key')) throw new ObolError('CONFLICT', 'that public key is already registered for another merchant');
        throw e;
      });
      await ctx.ledger.openAccountIn(tx, { id: accounts.merchant(req.merchantId), kind: 'merchant', currency: ctx.config.currency });
    },
    { isolation: 'read committed' },
  );
  return { merchantId: req.merchantId, merchantCert: cert, operatorCert: ctx.identity.certB64, signingCert: ctx.identity.signingCertB64, rootCert: ctx.identity.rootB64 };
}

/**
 * The books: every account (its balance with its shards') and, as kind `deposit`, every deposit
 * still reserved (a pending transfer of the ledger, named by its id).
 */
export async function balances(ctx: OperatorContext) {
  const rows = await ctx.db.query<{ id: string; kind: string; currency: string; balance: bigint }>(
    `SELECT a.id, a.kind, a.currency, a.balance + COALESCE(s.total, 0) AS balance
     FROM accounts a LEFT JOIN (SELECT account_id, SUM(balance) AS total FROM account_shards GROUP BY account_id) s ON s.account_id = a.id
     UNION ALL
     SELECT id, 'deposit', currency, amount FROM pending_transfers WHERE state = 'pending'
     ORDER BY 1`,
  );
  return rows.map((r) => ({ account: r.id, kind: r.kind, balance: formatAmount({ currency: r.currency, value: BigInt(r.balance) }) }));
}

export async function audit(ctx: OperatorContext) {
  const report = await ctx.ledger.audit();
  // Refunds after clearing: each booked once, as much as its record says, never more than was paid.
  const refundProblems = await auditRefunds(ctx);
  return {
    ok: report.ok && refundProblems.length === 0,
    perCurrency: report.perCurrency.map((c) => ({ currency: c.currency, sum: formatAmount({ currency: c.currency, value: c.sum }) })),
    underLimit: report.underLimit.map((a) => a.id),
    balanceMismatches: report.balanceMismatches.map((m) => m.account),
    unbalancedMovements: report.unbalancedMovements.map((m) => m.movementId),
    refundProblems,
  };
}

/** Net positions with other operators: positive = we owe them, negative = they owe us. */
export async function positions(ctx: OperatorContext) {
  const rows = await ctx.db.query<{ id: string; currency: string; balance: bigint }>(
    `SELECT a.id, a.currency, a.balance + COALESCE((SELECT SUM(s.balance) FROM account_shards s WHERE s.account_id = a.id), 0) AS balance
     FROM accounts a WHERE a.kind = 'inter_operator' ORDER BY a.id`,
  );
  return rows.map((r) => ({
    operatorId: r.id.split(':')[1]!,
    position: formatAmount({ currency: r.currency, value: BigInt(r.balance) }),
  }));
}
