import { ClearingsResponse, OperatorPaths, type RecordResponse } from '@obol/protocol/api';
import { depositRecordId } from '@obol/protocol/billingIds';
import { decideClearing } from '@obol/protocol/clearingRule';
import { ObolError } from '@obol/protocol/errors';
import { keyIdOf } from '@obol/protocol/keys';
import { type Amount, formatAmount, parseAmount } from '@obol/protocol/money';
import { CLEARING_BATCH_MAX, checkSchema } from '@obol/protocol/messages';
import { type Cert, reissueTemporaryB64, verifyChain } from '@obol/protocol/pki';
import { recordPurchasesHash } from '@obol/protocol/purchaseList';
import { type Signed, signMessage, verifyMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import type { Static } from 'typebox';
import { billingEntries } from '../billing/outbox.ts';
import { backoffDelay } from '@obol/protocol/backoff';
import { isFinalRefusal } from '../http/errors.ts';
import { kidOf } from './accountManager.ts';
import { DEPOSIT_CLEARING_WINDOW_MS, deposits, type OperatorContext, accounts } from './context.ts';
import { GroupRunner } from '../store/groupRunner.ts';
import { type Deliver, type DeliverMany, enqueueAll, type NewEntry, OutboxDispatcher } from '../store/outbox.ts';
import { REFUND_TOPIC, type RefundDelivery } from './refunds.ts';

/**
 * The acquirer (mediating trusted agent, seed 203): the merchant's operator. It checks the
 * customer operator's voucher, tells the merchant a deposit is there, and clears: it compares the
 * two records, pays the merchant no more than the customer signed, and returns the rest.
 *
 * Its protocol steps are the methods of AcquirerAgent (acquirerAgent.ts); this module holds the
 * logic they and the timers share, over the operator's context.
 */

/** Where K1 is sealed: the AAD names this column and the transaction id. */
export const ACQ_K1_COLUMN = 'acq_transactions.k1';

/** How far an arbiter's request time may be from our clock. */
const ARBITER_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The trusted party's part in a dispute: K1 as it relayed it to the merchant, released only to an
 * arbiter whose key this operator is configured to trust (`arbiters` in its configuration), for a
 * transaction of the merchant the request names, on a fresh request (its time within five minutes,
 * its id used once). Each release is logged in `arbiter_requests`; the answer is signed.
 */
export async function releaseK1(ctx: OperatorContext, body: unknown): Promise<Signed<'acquirer.keyRelease'>> {
  const kid = kidOf(body);
  const arbiter = await arbiterByKid(ctx, kid);
  if (!arbiter) throw new ObolError('UNKNOWN_KEY', 'this key is not an arbiter this operator trusts');
  const request = await verifyMessage(body, 'arbiter.keyRequest', () => arbiter.key, ctx.crypto);
  const r = request.body;
  const now = ctx.clock.now();
  if (Math.abs(now - r.time) > ARBITER_CLOCK_SKEW_MS) {
    throw new ObolError('UNAUTHORIZED', 'the request is not fresh: its time is more than five minutes from ours');
  }
  const [row] = await ctx.db.query<{ merchant_id: string; k1_sealed: string | null }>('SELECT merchant_id, k1_sealed FROM acq_transactions WHERE id = $1', [
    r.transactionId,
  ]);
  if (!row) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${r.transactionId} at ${ctx.config.operatorId}`);
  if (row.merchant_id !== r.merchantId) throw new ObolError('CONFLICT', `transaction ${r.transactionId} is not merchant ${r.merchantId}'s`);
  if (!row.k1_sealed) throw new ObolError('UNKNOWN_TRANSACTION', `transaction ${r.transactionId} was opened before K1 was kept`);
  const k1 = await ctx.sealKeys.open(row.k1_sealed, { column: ACQ_K1_COLUMN, rowId: r.transactionId });
  const logged = await ctx.db.query(
    `INSERT INTO arbiter_requests (msg_id, arbiter, transaction_id, case_ref, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id`,
    [r.msgId, arbiter.name, r.transactionId, r.caseRef, now],
  );
  if (logged.length === 0) throw new ObolError('REPLAYED', `request ${r.msgId} was already answered`);
  return signMessage(
    'acquirer.keyRelease',
    { msgId: randomId(), requestMsgId: r.msgId, transactionId: r.transactionId, merchantId: row.merchant_id, k1, time: now },
    ctx.identity.key.signer,
  );
}

async function arbiterByKid(ctx: OperatorContext, kid: string): Promise<{ name: string; key: CryptoKey } | undefined> {
  for (const [name, spki] of Object.entries(ctx.config.arbiters ?? {})) {
    if ((await keyIdOf(spki)) === kid) {
      await ctx.keys.addSpki(spki);
      return { name, key: ctx.keys.get(kid)! };
    }
  }
  return undefined;
}

export interface AcqTransactionRow {
  id: string;
  customer_operator: string;
  merchant_id: string;
  session_public_key: string;
  deposit: string;
  expires_at: bigint;
  deadline_at: bigint;
  state: 'open' | 'cleared' | 'failed';
  customer_record: Signed<'wallet.record'> | null;
  merchant_record: Signed<'merchant.record'> | null;
  clearing: Signed<'acquirer.clearing'> | null;
}

export async function acqTransaction(ctx: OperatorContext, id: string): Promise<AcqTransactionRow> {
  const [row] = await ctx.db.query<AcqTransactionRow>('SELECT * FROM acq_transactions WHERE id = $1', [id]);
  if (!row) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${id}`);
  return row;
}

export interface MerchantRow {
  id: string;
  public_key: string;
  key_id: string;
  url: string;
  cert: string;
}

/** A merchant's columns from a LEFT JOIN that may have found none. */
export type NullableMerchantRow = { [K in keyof MerchantRow]: MerchantRow[K] | null };

export async function merchantByKid(ctx: OperatorContext, kid: string): Promise<MerchantRow & { key: CryptoKey }> {
  const [row] = await ctx.db.query<MerchantRow>('SELECT id, public_key, key_id, url, cert FROM merchants WHERE key_id = $1', [kid]);
  if (!row) throw new ObolError('UNKNOWN_KEY', 'not a merchant of this operator');
  await ctx.keys.addSpki(row.public_key);
  return { ...row, key: ctx.keys.get(kid)! };
}

export async function openDeposit(
  ctx: OperatorContext,
  msg: Signed<'am.initiate'>,
  peer: { operatorId: string; cert: Cert; currency: string },
  /** The merchant's row as the caller read it (null: no such merchant); read here when not given. */
  merchantRow?: MerchantRow | null,
): Promise<Signed<'acquirer.ack'>> {
  const b = msg.body;
  const now = ctx.clock.now();
  const merchant =
    merchantRow !== undefined
      ? merchantRow
      : (await ctx.db.query<MerchantRow>('SELECT id, public_key, key_id, url, cert FROM merchants WHERE id = $1', [b.merchantId]))[0];
  if (!merchant) throw new ObolError('UNKNOWN_MERCHANT', `${b.merchantId} is not a merchant of ${ctx.config.operatorId}`);
  const deposit = parseAmount(b.depositMerchant);
  if (deposit.currency !== ctx.config.currency) throw new ObolError('CURRENCY_MISMATCH', `deposits here are in ${ctx.config.currency}`);
  // The customer's side is only passed on, but a voucher with an amount that is no amount (more
  // decimals than its currency has, past 64 bits, an unknown currency) or not in the vouching
  // operator's currency is refused, not acted on.
  const depositCustomer = parseAmount(b.depositCustomer);
  if (depositCustomer.currency !== peer.currency) {
    throw new ObolError('CURRENCY_MISMATCH', `${peer.operatorId} holds deposits in ${peer.currency}, not ${depositCustomer.currency}`);
  }
  // The temporary certificate must come from the vouching operator and name this transaction.
  const temp = await verifyChain(b.tempCert, { trustedIssuers: [peer.cert] }, { now, expectKind: 'temporary' }, ctx.crypto);
  if (temp.transactionId !== b.transactionId) throw new ObolError('CONFLICT', 'the temporary certificate names another transaction');
  // Re-issued under our key: the merchant trusts only its own operator.
  const reissued = await reissueTemporaryB64(temp, ctx.identity.issuer, ctx.crypto);
  const deadlineAt = b.expiresAt + ctx.clearingGraceMs;
  const k1Sealed = await ctx.sealKeys.seal(b.k1, { column: ACQ_K1_COLUMN, rowId: b.transactionId });

  await ctx.db.transaction(
    async (tx) => {
      // The customer's operator vouches for the deposit; the merchant is paid from it on clearing.
      const peerAccount = accounts.peer(peer.operatorId, deposit.currency);
      await ctx.ledger.ensureAccountIn(tx, { id: peerAccount, kind: 'inter_operator', currency: deposit.currency });
      await ctx.ledger.ensureAccountIn(tx, { id: accounts.merchant(merchant.id), kind: 'merchant', currency: deposit.currency });
      await ctx.ledger.reserveIn(tx, {
        id: deposits.acquirer(b.transactionId),
        kind: 'acquirer-deposit',
        debit: peerAccount,
        credit: accounts.merchant(merchant.id),
        amount: deposit,
        expiresAt: deadlineAt + DEPOSIT_CLEARING_WINDOW_MS,
        memo: { transactionId: b.transactionId },
      });
      // K1 is kept with the transaction: we are the trusted party that relays it (FIG 4), and an
      // arbiter we trust may ask for it in a dispute (POST /v1/arbiter/key). Sealed under the
      // data key (kept outside the database), bound to this row.
      const [inserted] = await tx.query(
        `INSERT INTO acq_transactions (id, customer_operator, merchant_id, pseudonym, session_public_key, deposit, expires_at,
           deadline_at, state, created_at, k1_sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [b.transactionId, peer.operatorId, merchant.id, b.pseudonym, temp.publicKeySpki, formatAmount(deposit), b.expiresAt, deadlineAt, now, k1Sealed],
      );
      if (!inserted) {
        // Another copy of this initiation came first (the reservation above was a no-op replay).
        const [existing] = await tx.query<{ state: string }>('SELECT state FROM acq_transactions WHERE id = $1', [b.transactionId]);
        if (existing?.state === 'failed') {
          // Final: the account manager has given this transaction up and opens a new one.
          throw new ObolError('SESSION_CLOSED', `transaction ${b.transactionId} could not be opened and was undone`);
        }
        throw new ObolError('UNAVAILABLE', `transaction ${b.transactionId} is being opened; send it again shortly for its answer`);
      }
    },
    { isolation: 'read committed' },
  );

  try {
    // Step 4: the information message, K1 signed by us as the trusted party.
    const info = await signMessage(
      'acquirer.info',
      {
        msgId: randomId(),
        transactionId: b.transactionId,
        merchantId: merchant.id,
        pseudonym: b.pseudonym,
        deposit: formatAmount(deposit),
        tempCert: reissued,
        k1: b.k1,
        timeoutSec: b.timeoutSec,
        expiresAt: b.expiresAt,
        time: now,
      },
      ctx.identity.key.signer,
    );
    // The merchant's key from the row already read (imported once per process, kept in the ring).
    const merchantKid = await ctx.keys.addSpki(merchant.public_key);
    const ack = await verifyMessage(await ctx.http.post(`${merchant.url}/info`, info), 'merchant.ack', () => ctx.keys.get(merchantKid), ctx.crypto);
    if (ack.body.transactionId !== b.transactionId || ack.body.infoMsgId !== info.body.msgId) {
      throw new ObolError('CONFLICT', 'the merchant acknowledged another message');
    }
  } catch (e) {
    await undoDeposit(ctx, b.transactionId);
    throw e instanceof ObolError && e.name === 'UNAVAILABLE'
      ? new ObolError('UNAVAILABLE', `merchant ${merchant.id} cannot be reached: ${e.message}`)
      : e;
  }
  return signMessage(
    'acquirer.ack',
    {
      msgId: randomId(),
      transactionId: b.transactionId,
      rate: b.rate,
      depositMerchant: formatAmount(deposit),
      merchantCert: merchant.cert,
      merchantUrl: merchant.url,
      expiresAt: b.expiresAt,
      time: ctx.clock.now(),
    },
    ctx.identity.key.signer,
  );
}

async function undoDeposit(ctx: OperatorContext, transactionId: string): Promise<void> {
  await ctx.db.transaction(
    async (tx) => {
      const [row] = await tx.query(`UPDATE acq_transactions SET state = 'failed' WHERE id = $1 AND state = 'open' RETURNING id`, [
        transactionId,
      ]);
      if (!row) return;
      await ctx.ledger.voidIn(tx, deposits.acquirer(transactionId));
    },
    { isolation: 'read committed' },
  );
}

/**
 * FIG 3 step 10: clear when both records are in, or when the deadline has passed. Ledger, state
 * and deposit record commit together, once; the clearing information then goes to the
 * customer's account manager (and is retried by `settleDeadlines` until it is delivered).
 */
export async function tryClear(
  ctx: OperatorContext,
  transactionId: string,
  /** The row as a statement of this request just returned it (saves reading it again). */
  fresh?: AcqTransactionRow,
): Promise<Static<typeof RecordResponse>> {
  const row = fresh ?? (await acqTransaction(ctx, transactionId));
  if (row.state === 'cleared' && row.clearing) {
    await sendClearing(ctx, row.id);
    return { transactionId, state: 'cleared', clearing: row.clearing };
  }
  if (row.state === 'failed') throw new ObolError('SESSION_CLOSED', 'that transaction never opened');
  const now = ctx.clock.now();
  const deposit = parseAmount(row.deposit);
  const w = row.customer_record?.body;
  const m = row.merchant_record?.body;
  const proof = m?.proof?.body as { cumulative?: string; n?: number } | undefined;
  const inCurrency = (text: string) => {
    const a = parseAmount(text);
    if (a.currency !== deposit.currency) throw new ObolError('CURRENCY_MISMATCH', 'a record is not in the deposit currency');
    return a;
  };
  const decision = decideClearing({
    deposit,
    wallet: w ? { total: inCurrency(w.total), count: w.count, purchasesHash: w.purchasesHash } : undefined,
    merchant: m
      ? {
          total: inCurrency(m.total),
          count: m.count,
          purchasesHash: m.purchasesHash,
          ...(proof?.cumulative ? { provenCumulative: inCurrency(proof.cumulative), provenCount: proof.n } : {}),
        }
      : undefined,
    deadlinePassed: now >= Number(row.deadline_at),
  });
  if (!decision) return { transactionId, state: w || m ? 'reported' : 'open' };

  const clearing = await signMessage(
    'acquirer.clearing',
    {
      msgId: randomId(),
      transactionId,
      outcome: decision.outcome,
      flagged: decision.flagged,
      count: decision.count,
      charged: formatAmount(decision.charged),
      unused: formatAmount(decision.unused),
      time: now,
    },
    ctx.identity.key.signer,
  );
  const depositRecord = await signMessage(
    'am.deposit',
    {
      recordId: depositRecordId(transactionId),
      operatorId: ctx.config.operatorId,
      merchantId: row.merchant_id,
      transactionId,
      amount: formatAmount(decision.charged),
      count: decision.count,
      purchasesHash: m?.purchasesHash ?? w?.purchasesHash ?? (await recordPurchasesHash(null, [])),
      flagged: decision.flagged,
      time: now,
    },
    ctx.identity.key.signer,
  );
  // The deposit record for billing and the clearing information leave through the outbox: written
  // with the clearing, delivered at least once afterwards (the clearing keyed by the trade handle,
  // which the receiver clears once).
  const payload: ClearingDelivery = { customerOperator: row.customer_operator, clearing };
  const cleared = await clearingCommits(ctx).run({
    transactionId,
    clearing,
    charged: decision.charged,
    entries: [...billingEntries(ctx.billingSinks, depositRecord), { topic: CLEARING_TOPIC, key: transactionId, payload }],
    now,
  });
  if (cleared) {
    // Ours is the clearing that was committed: no need to read it back.
    await sendClearing(ctx, transactionId);
    return { transactionId, state: 'cleared', clearing };
  }
  const latest = await acqTransaction(ctx, transactionId);
  if (latest.state === 'cleared') await sendClearing(ctx, latest.id);
  return { transactionId, state: latest.state, ...(latest.clearing ? { clearing: latest.clearing } : {}) };
}

/** One clearing to commit: its state, its ledger posting and its outbox entries. */
interface ClearingCommit {
  transactionId: string;
  clearing: Signed<'acquirer.clearing'>;
  charged: Amount;
  entries: NewEntry[];
  now: number;
}

/** Most clearings committed in one database transaction, and how many such transactions run at once. */
const CLEARING_GROUP = { max: 64, parallel: 2 } as const;
const clearingCommitters = new WeakMap<OperatorContext, GroupRunner<ClearingCommit, boolean>>();

/**
 * Clearings committed together (GroupRunner): those decided while a commit is running share the
 * next one — one transaction, one statement claiming their rows, one writing their outbox
 * entries, a ledger posting each — so its fixed cost and the hot accounts' row locks are taken
 * once for all of them, not once each. Answers per clearing whether it was committed now (false:
 * another copy of it came first). If the shared transaction fails, each is committed alone, so
 * one that cannot be booked fails alone.
 */
function clearingCommits(ctx: OperatorContext): GroupRunner<ClearingCommit, boolean> {
  let runner = clearingCommitters.get(ctx);
  if (!runner) {
    runner = new GroupRunner<ClearingCommit, boolean>(async (items) => {
      // A transaction twice in a group (both records arrived at once): the first copy goes in,
      // the other finds it committed, as it would one transaction later.
      const seen = new Set<string>();
      const unique = items.filter((c) => !seen.has(c.transactionId) && seen.add(c.transactionId));
      let committed: Set<string>;
      try {
        committed = await commitClearings(ctx, unique);
      } catch (e) {
        if (unique.length === 1) return items.map((c) => (c === unique[0] ? { error: e } : { ok: false }));
        committed = new Set();
        const alone = await Promise.all(unique.map((c) => commitClearings(ctx, [c]).then((ids) => ({ ok: ids.has(c.transactionId) }), (error: unknown) => ({ error }))));
        return items.map((c) => {
          const i = unique.indexOf(c);
          return i < 0 ? { ok: false } : alone[i]!;
        });
      }
      return items.map((c) => ({ ok: unique.includes(c) && committed.has(c.transactionId) }));
    }, CLEARING_GROUP);
    clearingCommitters.set(ctx, runner);
  }
  return runner;
}

/** Commit clearings in one transaction; returns the transactions this committed (not cleared meanwhile by another copy). */
function commitClearings(ctx: OperatorContext, items: readonly ClearingCommit[]): Promise<Set<string>> {
  return ctx.db.transaction(
    async (tx) => {
      const claimed = await tx.query<{ id: string }>(
        `UPDATE acq_transactions t SET state = 'cleared', clearing = v.clearing::jsonb
           FROM unnest($1::text[], $2::text[]) AS v(id, clearing)
          WHERE t.id = v.id AND t.state = 'open' RETURNING t.id`,
        [items.map((c) => c.transactionId), items.map((c) => JSON.stringify(c.clearing))],
      );
      const ids = new Set(claimed.map((r) => r.id));
      const mine = items.filter((c) => ids.has(c.transactionId)).sort((a, b) => (a.transactionId < b.transactionId ? -1 : 1));
      // The merchant is paid what was proven; the unused part stays with the customer's operator.
      for (const c of mine) await ctx.ledger.postIn(tx, deposits.acquirer(c.transactionId), c.charged);
      if (mine.length > 0) await enqueueAll(tx, mine.flatMap((c) => c.entries), Math.max(...mine.map((c) => c.now)));
      return ids;
    },
    { isolation: 'read committed' },
  );
}

/** Back-off of the FIG 3 timers' retries: 10 s after the first failure, doubling, at most 1 h. */
export const SETTLEMENT_BACKOFF = { baseMs: 10_000, factor: 2, capMs: 3_600_000 } as const;

/** The outbox topic of clearing information to customers' operators (FIG 3 step 10 → 11). */
export const CLEARING_TOPIC = 'clearing';

interface ClearingDelivery {
  customerOperator: string;
  clearing: Signed<'acquirer.clearing'>;
}

/** Thrown when we could not even find the peer: ours to fix, never the peer's final word. */
class PeerLookupFailed extends Error {}

const clearingOutboxes = new WeakMap<OperatorContext, OutboxDispatcher>();

/**
 * The dispatcher of clearing information for one operator: to the customer's account manager,
 * retried with the one back-off (settlement's pace); an answer that says it will never be accepted
 * (a final refusal, e.g. SESSION_CLOSED: that operator never opened the transaction) ends it.
 */
export function clearingOutbox(ctx: OperatorContext): OutboxDispatcher {
  let outbox = clearingOutboxes.get(ctx);
  if (!outbox) {
    const peerUrl = async (customerOperator: string) => {
      const peer = await ctx.peers.get(customerOperator).catch((e: unknown) => {
        throw new PeerLookupFailed(`operator ${customerOperator} could not be looked up: ${errorText(e)}`);
      });
      return peer.url;
    };
    const deliver: Deliver = async (entry) => {
      const { customerOperator, clearing } = entry.payload as ClearingDelivery;
      return ctx.http.post(`${await peerUrl(customerOperator)}${OperatorPaths.peerClearing}`, clearing);
    };
    // Refunds after clearing (refunds.ts) go the same way to the same operator, at the same pace.
    const deliverRefund: Deliver = async (entry) => {
      const { customerOperator, refund } = entry.payload as RefundDelivery;
      return ctx.http.post(`${await peerUrl(customerOperator)}${OperatorPaths.peerRefund}`, refund);
    };
    // Many clearings to one operator in one signed message (`acquirer.clearings`), answered item
    // by item; a peer that does not take it is sent each on its own (OutboxDispatcher.dispatchMany).
    const deliverMany: DeliverMany = async (entries) => {
      const { customerOperator } = entries[0]!.payload as ClearingDelivery;
      const batch = await signMessage(
        'acquirer.clearings',
        { msgId: randomId(), clearings: entries.map((e) => (e.payload as ClearingDelivery).clearing), time: ctx.clock.now() },
        ctx.identity.key.signer,
      );
      const answer = await ctx.http.post(`${await peerUrl(customerOperator)}${OperatorPaths.peerClearings}`, batch);
      checkSchema(ClearingsResponse, answer, 'answer to a batch of clearings');
      return answer.results.map((r) => ('ok' in r ? r : { error: ObolError.fromJSON(r.error) }));
    };
    outbox = new OutboxDispatcher({
      db: ctx.db,
      clock: ctx.clock,
      topics: new Map([
        [CLEARING_TOPIC, deliver],
        [REFUND_TOPIC, deliverRefund],
      ]),
      batches: new Map([
        [CLEARING_TOPIC, { receiverOf: (p: unknown) => (p as ClearingDelivery).customerOperator, deliver: deliverMany, max: CLEARING_BATCH_MAX }],
      ]),
      // Only the peer's own answer can be final: failing to look the peer up is ours to fix.
      isFinal: (e) => !(e instanceof PeerLookupFailed) && isFinalRefusal(e),
      backoff: SETTLEMENT_BACKOFF,
      // ctx.log is the server's logger once it exists, so it is read at each call; an entry's key
      // is the transaction (its trade handle), named as every other log line of ours names it.
      logger: { info: (o, m) => ctx.log.info(o, m), warn: (o, m) => ctx.log.warn(o, m), error: (o, m) => ctx.log.error(o, m) },
      logContext: (entry) => ({ transactionId: entry.key, customerOperator: (entry.payload as ClearingDelivery).customerOperator }),
    });
    clearingOutboxes.set(ctx, outbox);
  }
  return outbox;
}

const clearingSenders = new WeakMap<OperatorContext, GroupRunner<string, unknown>>();

/**
 * Deliver one transaction's clearing information now, when it is due (FIG 3 step 10 → 11); those
 * asked for while a delivery is under way go together in the next message to their operator.
 * Resolves once it has been tried (the outbox keeps what failed for the timers).
 */
async function sendClearing(ctx: OperatorContext, transactionId: string): Promise<void> {
  let sender = clearingSenders.get(ctx);
  if (!sender) {
    sender = new GroupRunner<string, unknown>(
      async (keys) => {
        const outcomes = await clearingOutbox(ctx).dispatchMany(CLEARING_TOPIC, keys);
        return keys.map((k) => ({ ok: outcomes.get(k) }));
      },
      { max: CLEARING_BATCH_MAX * 4, parallel: 2 },
    );
    clearingSenders.set(ctx, sender);
  }
  await sender.run(transactionId);
}

function errorText(e: unknown): string {
  return (e instanceof ObolError ? `${e.name}: ${e.message}` : e instanceof Error ? e.message : String(e)).slice(0, 500);
}

/**
 * The timers of FIG 3: settles every transaction whose reporting deadline has passed, and
 * re-sends clearing information not yet delivered. Run on an interval by the server, or by the
 * operator's CLI and the tests (with a moved clock).
 *
 * Each transaction succeeds or fails on its own: a failure is logged with its id, recorded on its
 * row (attempts, next try, error — in the database, which several processes share) and retried
 * after a back-off; the others go on.
 */
export async function settleDeadlines(
  ctx: OperatorContext,
): Promise<{ settled: number; failed: number; resent: number; refused: number }> {
  const now = ctx.clock.now();
  const due = await ctx.db.query<{ id: string; settle_attempts: number }>(
    `SELECT id, settle_attempts FROM acq_transactions
      WHERE state = 'open' AND deadline_at <= $1 AND (settle_next_at IS NULL OR settle_next_at <= $1)
      ORDER BY deadline_at, id`,
    [now],
  );
  let settled = 0;
  let failed = 0;
  for (const r of due) {
    try {
      await tryClear(ctx, r.id);
      settled++;
    } catch (e) {
      failed++;
      await recordSettleFailure(ctx, r.id, Number(r.settle_attempts) + 1, e).catch((dbError: unknown) =>
        ctx.log.error({ transactionId: r.id, err: dbError }, 'could not record a failed settlement'),
      );
    }
  }
  // Clearing information not yet delivered whose next try has come.
  const { delivered: resent, refused } = await clearingOutbox(ctx).dispatchDue();
  return { settled, failed, resent, refused };
}

async function recordSettleFailure(ctx: OperatorContext, transactionId: string, attempts: number, e: unknown): Promise<void> {
  const next = ctx.clock.now() + backoffDelay(attempts, SETTLEMENT_BACKOFF);
  const reason = errorText(e);
  await ctx.db.query('UPDATE acq_transactions SET settle_attempts = $2, settle_next_at = $3, settle_error = $4 WHERE id = $1', [
    transactionId,
    attempts,
    next,
    reason,
  ]);
  ctx.log.error({ transactionId, attempts, retryAt: next, err: e }, 'settling a transaction at its deadline failed; will retry');
}
