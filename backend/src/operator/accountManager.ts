import { type MerchantCertificateResponse, OperatorPaths, type TransactionStatus } from '@obol/protocol/api';
import { withdrawalRecordId } from '@obol/protocol/billingIds';
import { ObolError } from '@obol/protocol/errors';
import { depositInMerchantCurrency, parseRate, rateBetween, rateToString, settleDeposit } from '@obol/protocol/exchangeTable';
import { newTradeHandle, parseTradeHandle } from '@obol/protocol/identity';
import { type Amount, add, compare, formatAmount, parseAmount } from '@obol/protocol/money';
import { recordPurchasesHash } from '@obol/protocol/purchaseList';
import {
  certToBase64,
  issueTemporaryCertB64,
  parseCert,
  reissue,
  reissueOnce,
  verifyChain,
} from '@obol/protocol/pki';
import { checkMessageBody } from '@obol/protocol/messages';
import { type Signed, signMessage, verifyMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { billingEntries } from '../billing/outbox.ts';
import { type Queryable, isUniqueViolation } from '../store/db.ts';
import type { ItemResult } from '../store/groupRunner.ts';
import { enqueueAll, type NewEntry } from '../store/outbox.ts';
import { DEPOSIT_CLEARING_WINDOW_MS, deposits, type OperatorContext, accounts } from './context.ts';
import { customerKey } from './customers.ts';
import { answerOf, digestOf, handledJoin, once, type StoredAnswer, storeAnswerIf } from './handledMessages.ts';

/**
 * The account manager (seed 202/204): the shopper's own operator. It knows who the customer is,
 * reserves deposits, issues temporary certificates, converts at its own pinned rate, and turns
 * clearing information into withdrawal records. Toward the acquirer the customer is only a
 * per-transaction pseudonym, and the transaction only a random trade handle: the
 * TransactionIdentity (which names the logon) stays here, and this is where the two are translated
 * — initiation and the customer record going out, clearing information coming in.
 *
 * Its protocol steps are the methods of AccountManagerAgent (accountManagerAgent.ts); this module
 * holds the logic they and the timers share, over the operator's context.
 */

/** The key id a signed message names, checked for shape only (its signature is checked after). */
export function kidOf(body: unknown): string {
  const kid = body && typeof body === 'object' ? (body as { kid?: unknown }).kid : undefined;
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 64) throw new ObolError('MALFORMED', 'not a signed Obol message');
  return kid;
}

/** Credit a customer from the operator's funding account (top-ups, the CLI's `fund`). */
export async function fund(ctx: OperatorContext, customerId: string, amount: Amount, movementId: string): Promise<void> {
  await ctx.db.transaction(
    async (tx) => {
      await ctx.ledger.openAccountIn(tx, { id: accounts.funding(amount.currency), kind: 'funding', currency: amount.currency });
      await ctx.ledger.payIn(tx, { id: movementId, kind: 'fund', from: accounts.funding(amount.currency), to: accounts.customer(customerId), amount });
    },
    { isolation: 'read committed' },
  );
}

/**
 * Re-issued merchant certificates, kept 10 minutes per operator instance: keyed by its context, not
 * by its id, because several operators of the same id (each with its own key) can live in one
 * process (tests, a restarted world) and one must never hand out a certificate the other signed.
 */
const reissuedMerchants = new WeakMap<OperatorContext, Map<string, { at: number; answer: MerchantCertificateResponse }>>();

export async function merchantCertificate(ctx: OperatorContext, operatorId: string, merchantId: string): Promise<MerchantCertificateResponse> {
  const key = `${operatorId}/${merchantId}`;
  const now = ctx.clock.now();
  let cache = reissuedMerchants.get(ctx);
  if (!cache) {
    cache = new Map();
    reissuedMerchants.set(ctx, cache);
  }
  const cached = cache.get(key);
  if (cached && now - cached.at < 600_000) return cached.answer;
  const peer = await ctx.peers.get(operatorId);
  const body = (await ctx.http.get(`${peer.url}${OperatorPaths.peerMerchant.replace(':merchantId', encodeURIComponent(merchantId))}`)) as {
    merchantCert?: unknown;
  };
  if (typeof body?.merchantCert !== 'string') throw new ObolError('MALFORMED', 'the merchant operator answered without a certificate');
  const cert = parseCert(body.merchantCert);
  const merchant = await verifyChain(cert, { trustedIssuers: [peer.cert] }, { now, expectKind: 'merchant' }, ctx.crypto);
  if (merchant.merchantId !== merchantId) throw new ObolError('MERCHANT_NOT_TRUSTED', 'the operator vouched for another merchant');
  const forWallet = await reissue(cert, ctx.identity.issuer);
  const answer = { merchantId, operatorId, merchantCert: certToBase64(forWallet), origins: merchant.origins ?? [] };
  cache.set(key, { at: now, answer });
  return answer;
}

// ── FIG 2 steps 2–3 and 6–7 ───────────────────────────────────────────────────────────────────

export interface AmTransactionRow {
  id: string;
  /** The trade handle the acquirer and the merchant know this transaction by (null: opened before handles). */
  trade_handle: string | null;
  customer_id: string;
  session_id: string;
  merchant_id: string;
  merchant_operator: string;
  session_public_key: string;
  deposit_customer: string;
  deposit_merchant: string;
  rate: string;
  expires_at: bigint;
  state: 'pending' | 'open' | 'reported' | 'cleared' | 'failed';
  customer_record: Signed<'wallet.record'> | null;
  clearing: Signed<'acquirer.clearing'> | null;
  charged_customer: string | null;
  refund_customer: string | null;
}

export async function amTransaction(ctx: OperatorContext, id: string): Promise<AmTransactionRow | undefined> {
  const [row] = await ctx.db.query<AmTransactionRow>('SELECT * FROM am_transactions WHERE id = $1', [id]);
  return row;
}

/** A transaction by the trade handle the other side names it by (the boundary's translation). */
async function amTransactionByHandle(ctx: OperatorContext, handle: string): Promise<AmTransactionRow | undefined> {
  const [row] = await ctx.db.query<AmTransactionRow>('SELECT * FROM am_transactions WHERE trade_handle = $1', [handle]);
  return row;
}

export async function initiate(ctx: OperatorContext, body: unknown): Promise<Signed<'am.ack'>> {
  const kid = kidOf(body);
  const msg = await verifyMessage(body, 'wallet.initiate', () => customerKey(ctx, kid), ctx.crypto);
  const b = msg.body;
  const customerId = msg.kid;
  const digest = await digestOf(msg);
  // The replay check and the logon session in one round trip (the session is only used when the
  // message is new).
  const [looked] = await ctx.db.query<{ digest: string | null; response: StoredAnswer | null; customer_id: string | null; expires_at: bigint | null }>(
    `SELECT handled_messages.digest, handled_messages.response, sessions.customer_id, sessions.expires_at
     FROM ${handledJoin('$1')} LEFT JOIN sessions ON sessions.id = $2`,
    [b.msgId, b.sessionId],
  );
  const lookedUp = { answer: answerOf(looked, b.msgId, digest) };
  return once(ctx.db, b.msgId, msg.type, msg, ctx.clock, async () => {
    const now = ctx.clock.now();
    // Authenticate: the logon session must be this customer's and still running.
    if (!looked || looked.customer_id === null || looked.customer_id !== customerId) throw new ObolError('UNKNOWN_SESSION', 'log on first');
    if (Number(looked.expires_at) <= now) throw new ObolError('SESSION_EXPIRED', 'the logon session has expired: log on again');

    const peer = await ctx.peers.get(b.merchantOperatorId);
    const deposit = parseAmount(b.deposit);
    if (deposit.currency !== ctx.config.currency) {
      throw new ObolError('CURRENCY_MISMATCH', `deposits at ${ctx.config.operatorId} are in ${ctx.config.currency}`);
    }
    if (deposit.value <= 0n) throw new ObolError('INVALID_AMOUNT', 'a deposit must be more than zero');
    const firstPrice = parseAmount(b.firstPrice);
    if (firstPrice.currency !== peer.currency) {
      throw new ObolError('CURRENCY_MISMATCH', `merchants of ${peer.operatorId} sell in ${peer.currency}`);
    }
    // The rate of the table the shopper was shown; the merchant is never promised more than was
    // reserved (floor), and the remainder stays with the customer.
    const table = await ctx.tables.shown(b.shownTableIssuedAt);
    const rate = rateBetween(table, deposit.currency, peer.currency);
    const depositMerchant = depositInMerchantCurrency(deposit, peer.currency, rate);
    if (compare(depositMerchant, firstPrice) < 0) {
      throw new ObolError('INVALID_AMOUNT', `a deposit of ${b.deposit} (${formatAmount(depositMerchant)}) does not cover ${b.firstPrice}`);
    }
    const expiresAt = now + b.timeoutSec * 1000;
    // Both fresh and random per transaction, derived from nothing: the acquirer and the merchant
    // must not be able to tell two deposits of one logon (or one customer) apart from two shoppers'.
    const pseudonym = randomId(16);
    const handle = newTradeHandle();

    // Reserve atomically against balance and credit limit: what makes double spending impossible.
    const transactionId = await reserveOnce(b.msgId, () =>
      ctx.db.transaction(
        async (tx) => {
          const [seq] = await tx.query<{ next_tx: bigint }>(
            'UPDATE sessions SET next_tx = next_tx + 1 WHERE id = $1 RETURNING next_tx',
            [b.sessionId],
          );
          const transactionId = `${b.sessionId}.${seq!.next_tx}`;
          // Paid on clearing to the merchant's operator, or through FX when it is paid in another currency.
          const payee =
            deposit.currency === peer.currency
              ? ({ id: accounts.peer(peer.operatorId, deposit.currency), kind: 'inter_operator', currency: deposit.currency } as const)
              : ({ id: accounts.fx(deposit.currency), kind: 'fx', currency: deposit.currency } as const);
          await ctx.ledger.ensureAccountIn(tx, payee);
          await ctx.ledger.reserveIn(tx, {
            id: deposits.customer(transactionId),
            kind: 'deposit',
            debit: accounts.customer(customerId),
            credit: payee.id,
            amount: deposit,
            expiresAt: expiresAt + ctx.clearingGraceMs + DEPOSIT_CLEARING_WINDOW_MS,
            memo: { transactionId },
          });
          await tx.query(
            `INSERT INTO am_transactions (id, initiate_msg_id, session_id, customer_id, merchant_id, merchant_operator,
               pseudonym, session_public_key, deposit_customer, deposit_merchant, rate, expires_at, state, created_at, trade_handle)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14)`,
            [
              transactionId,
              b.msgId,
              b.sessionId,
              customerId,
              b.merchantId,
              peer.operatorId,
              pseudonym,
              b.sessionPublicKey,
              formatAmount(deposit),
              formatAmount(depositMerchant),
              rateToString(rate),
              expiresAt,
              now,
              handle,
            ],
          );
          return transactionId;
        },
        { isolation: 'read committed' },
      ),
    );

    try {
      const tempCertB64 = await issueTemporaryCertB64({
        publicKey: b.sessionPublicKey,
        handle,
        issuer: ctx.identity.issuer,
        notBefore: now - 60_000,
        notAfter: expiresAt + ctx.clearingGraceMs,
      }, ctx.crypto);
      const forward = await signMessage(
        'am.initiate',
        {
          msgId: randomId(),
          transactionId: handle,
          customerOperatorId: ctx.config.operatorId,
          pseudonym,
          merchantId: b.merchantId,
          depositCustomer: formatAmount(deposit),
          depositMerchant: formatAmount(depositMerchant),
          rate: rateToString(rate),
          tempCert: tempCertB64,
          k1: b.k1,
          timeoutSec: b.timeoutSec,
          expiresAt,
          time: now,
        },
        ctx.identity.key.signer,
      );
      const ack = await verifyMessage(await ctx.http.post(`${peer.url}${OperatorPaths.peerInitiate}`, forward), 'acquirer.ack', (k) =>
        k === peer.kid ? peer.key : undefined,
      );
      if (ack.body.transactionId !== handle || ack.body.depositMerchant !== formatAmount(depositMerchant)) {
        throw new ObolError('CONFLICT', 'the acquirer acknowledged another transaction or deposit');
      }
      // The merchant's certificate as the merchant's operator issued it, re-issued under our own
      // key so the wallet needs to trust only its own operator.
      const merchantCert = parseCert(ack.body.merchantCert);
      const merchant = await verifyChain(merchantCert, { trustedIssuers: [peer.cert] }, { now, expectKind: 'merchant' }, ctx.crypto);
      if (merchant.merchantId !== b.merchantId) throw new ObolError('MERCHANT_NOT_TRUSTED', 'the acquirer vouched for another merchant');
      const forWallet = await reissueOnce(merchantCert, ctx.identity.issuer, now);
      const answer = await signMessage(
        'am.ack',
        {
          msgId: randomId(),
          transactionId,
          handle,
          rate: rateToString(rate),
          depositCustomer: formatAmount(deposit),
          depositMerchant: formatAmount(depositMerchant),
          merchantCert: certToBase64(forWallet),
          merchantUrl: ack.body.merchantUrl,
          tempCert: tempCertB64,
          expiresAt,
          time: ctx.clock.now(),
        },
        ctx.identity.key.signer,
      );
      // Open and remember the answer in one statement (one commit): a crash after this still
      // gives a resend the same acknowledgement, and a crash before it leaves a pending row the
      // stalled-initiation timer releases (after which a resend is a clean retry).
      const opened = await storeAnswerIf(
        ctx.db,
        `UPDATE am_transactions SET state = 'open' WHERE id = $1 AND state = 'pending' RETURNING id`,
        [transactionId],
        b.msgId,
        msg.type,
        digest,
        { ok: answer },
        ctx.clock.now(),
      );
      if (!opened) throw new ObolError('TIMEOUT', 'the initiation took too long and its deposit was released; send it again');
      return answer;
    } catch (e) {
      await failInitiation(ctx, transactionId);
      throw e;
    }
  }, { digest, storesItsAnswer: true, lookedUp });
}

/**
 * Only one live attempt per message id (a unique index over rows not failed): a second copy of a
 * message whose first copy is still being handled is told to send it again, and gets the stored
 * answer then; never a constraint error.
 */
async function reserveOnce<T>(msgId: string, reserve: () => Promise<T>): Promise<T> {
  try {
    return await reserve();
  } catch (e) {
    if (!isUniqueViolation(e, 'am_transactions_initiate_msg_id_live')) throw e;
    throw new ObolError('UNAVAILABLE', `initiation ${msgId} is being handled; send it again shortly for its answer`);
  }
}

/** The deposit goes back when the session could not be opened. */
async function failInitiation(ctx: OperatorContext, transactionId: string): Promise<void> {
  await ctx.db.transaction(
    async (tx) => {
      const [row] = await tx.query<{ customer_id: string; deposit_customer: string }>(
        `UPDATE am_transactions SET state = 'failed' WHERE id = $1 AND state = 'pending' RETURNING customer_id, deposit_customer`,
        [transactionId],
      );
      if (!row) return;
      await ctx.ledger.voidIn(tx, deposits.customer(transactionId));
    },
    { isolation: 'read committed' },
  );
}

/** Deposits whose initiation was cut half-way (a crash between reserve and acknowledgement) go back. */
export async function releaseStalledInitiations(ctx: OperatorContext, olderThanMs = 120_000): Promise<number> {
  const rows = await ctx.db.query<{ id: string }>(`SELECT id FROM am_transactions WHERE state = 'pending' AND created_at < $1`, [
    ctx.clock.now() - olderThanMs,
  ]);
  // Each on its own: one that cannot be released (logged with its id) holds up no other.
  let released = 0;
  for (const r of rows) {
    try {
      await failInitiation(ctx, r.id);
      released++;
    } catch (err) {
      ctx.log.error({ transactionId: r.id, err }, 'releasing a stalled initiation failed; will retry');
    }
  }
  return released;
}

// ── FIG 3 step 8: the customer's record, forwarded to the acquirer ─────────────────────────────

/**
 * The wallet's record names the transaction by its trade handle (it is signed for the acquirer,
 * which knows no other name): found by the handle, kept, and forwarded under it.
 */
export async function customerRecord(ctx: OperatorContext, body: unknown) {
  const shape = body as { body?: { transactionId?: unknown } };
  const handle = parseTradeHandle(typeof shape?.body?.transactionId === 'string' ? shape.body.transactionId : '');
  const row = await amTransactionByHandle(ctx, handle);
  if (!row) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${handle}`);
  const transactionId = row.id;
  const sessionKid = await ctx.keys.addSpki(row.session_public_key);
  const msg = await verifyMessage(body, 'wallet.record', (k) => (k === sessionKid ? ctx.keys.get(k) : undefined), ctx.crypto);
  return once(ctx.db, msg.body.msgId, msg.type, msg, ctx.clock, async () => {
    if (row.state === 'pending' || row.state === 'failed') throw new ObolError('SESSION_CLOSED', 'that transaction never opened');
    const total = parseAmount(msg.body.total);
    if (total.currency !== parseAmount(row.deposit_merchant).currency) {
      throw new ObolError('CURRENCY_MISMATCH', 'a record totals in the merchant currency');
    }
    const [updated] = await ctx.db.query<AmTransactionRow>(
      `UPDATE am_transactions SET customer_record = $2::text::jsonb, state = CASE WHEN state = 'open' THEN 'reported' ELSE state END
       WHERE id = $1 AND customer_record IS NULL RETURNING *`,
      [transactionId, JSON.stringify(msg)],
    );
    const peer = await ctx.peers.get(row.merchant_operator);
    const forward = await signMessage(
      'am.customerRecord',
      { msgId: randomId(), transactionId: handle, record: msg, time: ctx.clock.now() },
      ctx.identity.key.signer,
    );
    const answer = (await ctx.http.post(`${peer.url}${OperatorPaths.peerCustomerRecord}`, forward)) as {
      state: string;
      clearing?: Signed<'acquirer.clearing'>;
    };
    if (answer.clearing) {
      const clearing = await verifyMessage(answer.clearing, 'acquirer.clearing', (k) => (k === peer.kid ? peer.key : undefined), ctx.crypto);
      // Applied (now or by an earlier copy): the transaction is cleared by the acquirer's one
      // clearing of it, which is this message; no need to read the row back.
      await applyClearing(ctx, clearing, peer.operatorId, updated);
      return { transactionId: handle, state: 'cleared', clearing };
    }
    // The row as our update just returned it, when this copy of the record was the one kept.
    const latest = updated ?? (await amTransaction(ctx, transactionId))!;
    return { transactionId: handle, state: latest.state, ...(latest.clearing ? { clearing: latest.clearing } : {}) };
  });
}

// ── FIG 3 steps 10–11 on the customer side ────────────────────────────────────────────────────

/**
 * Clearing information: the unused deposit comes back in the merchant's currency and is
 * converted back at the transaction's pinned rate, so the shopper pays exactly what the
 * purchases cost at the rate she was shown; the exchange difference stays in our FX account.
 * Ledger, transaction state and the withdrawal record commit together, once.
 */
export async function applyClearing(ctx: OperatorContext, msg: Signed<'acquirer.clearing'>, fromOperator: string, fresh?: AmTransactionRow) {
  // The acquirer names the trade handle; our books, ledger and withdrawal record the TransactionIdentity.
  const row = fresh ?? (await amTransactionByHandle(ctx, msg.body.transactionId));
  const step = await prepareClearing(ctx, msg, fromOperator, row);
  if ('done' in step) return step.done;
  await ctx.db.transaction(async (tx) => bookClearings(ctx, tx, [step]), { isolation: 'read committed' });
  return { transactionId: msg.body.transactionId, state: 'cleared' };
}

/** What applying one clearing books, worked out and signed before its transaction. */
interface ClearingBooking {
  transactionId: string;
  msg: Signed<'acquirer.clearing'>;
  fromOperator: string;
  charged: Amount;
  chargedCustomer: Amount;
  refund: Amount;
  sameCurrency: boolean;
  withdrawal: Signed<'am.withdrawal'>;
}

/** The checks of one clearing against its transaction, and the withdrawal record it will book; or its answer, when there is nothing to book. */
async function prepareClearing(
  ctx: OperatorContext,
  msg: Signed<'acquirer.clearing'>,
  fromOperator: string,
  row: AmTransactionRow | undefined,
): Promise<{ done: { transactionId: string; state: string } } | ClearingBooking> {
  const c = msg.body;
  if (!row || row.trade_handle !== c.transactionId) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${c.transactionId}`);
  const transactionId = row.id;
  if (row.merchant_operator !== fromOperator) throw new ObolError('UNAUTHORIZED', 'clearing from an operator that is not the acquirer');
  if (row.state === 'cleared') return { done: { transactionId: c.transactionId, state: 'cleared' } };
  if (row.state === 'pending' || row.state === 'failed') throw new ObolError('SESSION_CLOSED', 'that transaction never opened');

  const depositCustomer = parseAmount(row.deposit_customer);
  const depositMerchant = parseAmount(row.deposit_merchant);
  const charged = parseAmount(c.charged);
  if (charged.currency !== depositMerchant.currency || compare(charged, depositMerchant) > 0) {
    throw new ObolError('AMOUNT_EXCEEDS_SIGNED', 'clearing charges more than the deposit');
  }
  // The refund is computed here from `charged`; a clearing whose `unused` does not make up the rest
  // of the deposit (clearingRule.ts) was not made by the rule, and one of its amounts is wrong.
  const unused = parseAmount(c.unused);
  if (unused.currency !== depositMerchant.currency || compare(add(charged, unused), depositMerchant) !== 0) {
    throw new ObolError('INVALID_AMOUNT', `clearing of ${c.charged} and ${c.unused} unused does not make up the deposit of ${row.deposit_merchant}`);
  }
  // The one rule the wallet also shows the shopper by (settleDeposit).
  const { chargedCustomer, refundCustomer: refund } = settleDeposit(depositCustomer, charged, parseRate(row.rate));
  const sameCurrency = depositCustomer.currency === charged.currency;

  const withdrawal = await signMessage(
    'am.withdrawal',
    {
      recordId: withdrawalRecordId(transactionId),
      operatorId: ctx.config.operatorId,
      customerId: row.customer_id,
      transactionId,
      handle: c.transactionId,
      merchantOperatorId: fromOperator,
      amount: formatAmount(chargedCustomer),
      amountMerchant: formatAmount(charged),
      rate: row.rate,
      count: c.count,
      // Without the wallet's record, the hash of an empty list stands in.
      purchasesHash: row.customer_record?.body.purchasesHash ?? (await recordPurchasesHash(null, [])),
      flagged: c.flagged,
      time: ctx.clock.now(),
    },
    ctx.identity.key.signer,
  );
  return { transactionId, msg, fromOperator, charged, chargedCustomer, refund, sameCurrency, withdrawal };
}

/**
 * Book clearings in the caller's transaction: each claimed in one statement for all (a
 * transaction another copy cleared meanwhile is skipped), its ledger posted, and every withdrawal
 * record written to the outbox in one statement. Returns the transactions booked now.
 */
async function bookClearings(ctx: OperatorContext, tx: Queryable, bookings: readonly ClearingBooking[]): Promise<Set<string>> {
  const claimed = await tx.query<{ id: string }>(
    `UPDATE am_transactions t SET state = 'cleared', clearing = v.clearing::jsonb, charged_customer = v.charged, refund_customer = v.refund
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v(id, clearing, charged, refund)
      WHERE t.id = v.id AND t.state IN ('open', 'reported') RETURNING t.id`,
    [
      bookings.map((b) => b.transactionId),
      bookings.map((b) => JSON.stringify(b.msg)),
      bookings.map((b) => formatAmount(b.chargedCustomer)),
      bookings.map((b) => formatAmount(b.refund)),
    ],
  );
  const booked = new Set(claimed.map((r) => r.id));
  const now = ctx.clock.now();
  const entries: NewEntry[] = [];
  // In a fixed order, so two transactions booking overlapping accounts take their locks alike.
  for (const b of [...bookings].filter((b) => booked.has(b.transactionId)).sort((x, y) => (x.transactionId < y.transactionId ? -1 : 1))) {
    // What the purchases cost, at the pinned rate, goes to the merchant's operator (or to FX);
    // the rest of the deposit simply stays the customer's.
    await ctx.ledger.postIn(tx, deposits.customer(b.transactionId), b.chargedCustomer);
    if (!b.sameCurrency && b.charged.value > 0n) {
      // FX pays the merchant's operator in its currency; the rounding stays with FX.
      const peerAccount = { id: accounts.peer(b.fromOperator, b.charged.currency), kind: 'inter_operator', currency: b.charged.currency } as const;
      const fxAccount = { id: accounts.fx(b.charged.currency), kind: 'fx', currency: b.charged.currency } as const;
      await ctx.ledger.ensureAccountIn(tx, peerAccount);
      await ctx.ledger.ensureAccountIn(tx, fxAccount);
      await ctx.ledger.payIn(tx, {
        id: `exchange:${b.transactionId}`,
        kind: 'clear-exchange',
        from: fxAccount.id,
        to: peerAccount.id,
        amount: b.charged,
        memo: { transactionId: b.transactionId, outcome: b.msg.body.outcome },
      });
    }
    entries.push(...billingEntries(ctx.billingSinks, b.withdrawal));
  }
  if (entries.length > 0) await enqueueAll(tx, entries, now);
  return booked;
}

/**
 * Many clearings of one acquirer at once (`acquirer.clearings`, whose one signature the caller
 * has checked): one read of their transactions, and one database transaction that books all of
 * them. Each item is answered on its own: if that transaction fails, each is applied alone, so
 * one that cannot be booked fails alone and the others are booked; an item applied before
 * (a batch sent again) answers 'cleared' and books nothing.
 */
export async function applyClearings(
  ctx: OperatorContext,
  items: readonly unknown[],
  peer: { operatorId: string; kid: string },
): Promise<ItemResult<{ transactionId: string; state: string }>[]> {
  const results: (ItemResult<{ transactionId: string; state: string }> | undefined)[] = items.map(() => undefined);
  const messages: (Signed<'acquirer.clearing'> | undefined)[] = items.map((item, i) => {
    try {
      const m = item as Signed<'acquirer.clearing'>;
      // Authentic by the batch's signature, which covers its bytes; it must also be the same
      // signer's, as if it had come alone.
      if (m.kid !== peer.kid) throw new ObolError('BAD_SIGNATURE', 'a clearing in the batch names another signer than the batch');
      checkMessageBody('acquirer.clearing', m.body);
      return m;
    } catch (e) {
      results[i] = { error: e };
      return undefined;
    }
  });
  const handles = [...new Set(messages.flatMap((m) => (m ? [m.body.transactionId] : [])))];
  const rows = new Map(
    handles.length === 0
      ? []
      : (await ctx.db.query<AmTransactionRow>('SELECT * FROM am_transactions WHERE trade_handle = ANY($1::text[])', [handles])).map((r) => [r.trade_handle, r]),
  );
  // Each transaction once: a second item naming it (a batch cannot carry two) answers as the first.
  const first = new Map<string, number>();
  const bookings: { i: number; booking: ClearingBooking }[] = [];
  for (const [i, m] of messages.entries()) {
    if (!m) continue;
    const handle = m.body.transactionId;
    if (first.has(handle)) continue;
    first.set(handle, i);
    try {
      const step = await prepareClearing(ctx, m, peer.operatorId, rows.get(handle));
      if ('done' in step) results[i] = { ok: step.done };
      else bookings.push({ i, booking: step });
    } catch (e) {
      results[i] = { error: e };
    }
  }
  if (bookings.length > 0) {
    try {
      await ctx.db.transaction(async (tx) => bookClearings(ctx, tx, bookings.map((b) => b.booking)), { isolation: 'read committed' });
      for (const b of bookings) results[b.i] = { ok: { transactionId: b.booking.msg.body.transactionId, state: 'cleared' } };
    } catch {
      // Which one could not be booked is not known: each alone, so it fails alone.
      await Promise.all(
        bookings.map(async (b) => {
          try {
            await ctx.db.transaction(async (tx) => bookClearings(ctx, tx, [b.booking]), { isolation: 'read committed' });
            results[b.i] = { ok: { transactionId: b.booking.msg.body.transactionId, state: 'cleared' } };
          } catch (e) {
            results[b.i] = { error: e };
          }
        }),
      );
    }
  }
  for (const [i, m] of messages.entries()) {
    if (m && results[i] === undefined) results[i] = results[first.get(m.body.transactionId)!];
  }
  return results as ItemResult<{ transactionId: string; state: string }>[];
}

export function statusOf(row: AmTransactionRow): TransactionStatus {
  const state = row.state === 'pending' ? 'open' : row.state;
  return {
    transactionId: row.id,
    state,
    depositCustomer: row.deposit_customer,
    depositMerchant: row.deposit_merchant,
    rate: row.rate,
    ...(row.charged_customer ? { chargedCustomer: row.charged_customer } : {}),
    ...(row.refund_customer ? { refundCustomer: row.refund_customer } : {}),
    ...(row.clearing
      ? {
          chargedMerchant: row.clearing.body.charged,
          outcome: row.clearing.body.outcome,
          flagged: row.clearing.body.flagged,
          clearing: row.clearing,
        }
      : {}),
  };
}

