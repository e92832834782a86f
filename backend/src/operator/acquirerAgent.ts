import type { RecordResponse } from '@obol/protocol/api';
import { BoundedCache } from '@obol/protocol/boundedCache';
import { ObolError } from '@obol/protocol/errors';
import { type Signed, verifyMessage } from '@obol/protocol/signed';
import type { Static } from 'typebox';
import { kidOf } from './accountManager.ts';
import {
  type AcqTransactionRow,
  type MerchantRow,
  type NullableMerchantRow,
  acqTransaction,
  merchantByKid,
  openDeposit,
  releaseK1,
  settleDeadlines,
  tryClear,
} from './acquirer.ts';
import type { OperatorContext } from './context.ts';
import { answerOf, digestOf, handledJoin, once, type StoredAnswer } from './handledMessages.ts';
import { merchantRefund } from './refunds.ts';
import { merchantStatement } from './statement.ts';

/**
 * The acquirer (mediating trusted agent, seed 203) as an agent: one method per protocol step,
 * each taking the unverified body as it arrived and returning the answer. Like
 * AccountManagerAgent it works only through the operator's context (store, ledger, clock, and the
 * `Http` it calls the customer's operator and its merchants through), so a test can call a step
 * directly or put a fault between it and another operator. The Fastify routes
 * (routes/acquirer.ts) only map HTTP to these methods.
 */
/** What a transaction's records are checked against: set when it opens, never changed after. */
type FixedAtOpen = Pick<AcqTransactionRow, 'id' | 'customer_operator' | 'merchant_id' | 'session_public_key'>;

/**
 * Transactions' fixed fields, kept after a first read by this process: a session's second record
 * (the wallet's or the merchant's, whichever comes last) is checked and written without reading
 * its row first. Only fields that never change are kept, so a copy is never stale; everything
 * else (state, records, clearing) is read by the write that returns it.
 */
const FIXED_KEPT = 50_000;

export class AcquirerAgent {
  private readonly fixed = new BoundedCache<string, FixedAtOpen>(FIXED_KEPT);

  constructor(readonly ctx: OperatorContext) {}

  private async fixedAtOpen(transactionId: string): Promise<FixedAtOpen> {
    const kept = this.fixed.get(transactionId);
    if (kept) return kept;
    const { id, customer_operator, merchant_id, session_public_key } = await acqTransaction(this.ctx, transactionId);
    const fixed = { id, customer_operator, merchant_id, session_public_key };
    this.fixed.set(id, fixed);
    return fixed;
  }

  /** FIG 2 step 3 → 4, 5, 6: the customer operator's voucher; the merchant is told, the deposit held. */
  async initiate(body: unknown): Promise<Signed<'acquirer.ack'>> {
    const ctx = this.ctx;
    const peer = await ctx.peers.byKeyId(kidOf(body));
    if (!peer) throw new ObolError('UNKNOWN_KEY', 'initiation from an unknown operator');
    const msg = await verifyMessage(body, 'am.initiate', () => peer.key, ctx.crypto);
    if (msg.body.customerOperatorId !== peer.operatorId) throw new ObolError('BAD_SIGNATURE', 'the voucher is not signed by the customer operator');
    const digest = await digestOf(msg);
    // The replay check and the merchant's row in one round trip (the row is only used when the
    // message is new).
    const [looked] = await ctx.db.query<{ digest: string | null; response: StoredAnswer | null } & NullableMerchantRow>(
      `SELECT handled_messages.digest, handled_messages.response, merchants.id, merchants.public_key, merchants.key_id, merchants.url, merchants.cert
       FROM ${handledJoin('$1')} LEFT JOIN merchants ON merchants.id = $2`,
      [msg.body.msgId, msg.body.merchantId],
    );
    const lookedUp = { answer: answerOf(looked, msg.body.msgId, digest) };
    const merchant = looked && looked.id !== null ? (looked as MerchantRow) : null;
    return once(ctx.db, msg.body.msgId, msg.type, msg, ctx.clock, () => openDeposit(ctx, msg, peer, merchant), { digest, lookedUp });
  }

  /** A merchant's certificate for other operators (they re-issue it for their wallets). */
  async merchant(merchantId: string): Promise<{ merchantId: string; merchantCert: string }> {
    const [row] = await this.ctx.db.query<{ id: string; cert: string }>('SELECT id, cert FROM merchants WHERE id = $1', [merchantId]);
    if (!row) throw new ObolError('UNKNOWN_MERCHANT', `${merchantId} is not a merchant of ${this.ctx.config.operatorId}`);
    return { merchantId: row.id, merchantCert: row.cert };
  }

  /** FIG 3 step 8 (forwarded by the customer's operator) and step 9. */
  async customerRecord(body: unknown): Promise<Static<typeof RecordResponse>> {
    const ctx = this.ctx;
    const peer = await ctx.peers.byKeyId(kidOf(body));
    if (!peer) throw new ObolError('UNKNOWN_KEY', 'a record from an unknown operator');
    const msg = await verifyMessage(body, 'am.customerRecord', () => peer.key, ctx.crypto);
    const row = await this.fixedAtOpen(msg.body.transactionId);
    if (row.customer_operator !== peer.operatorId) throw new ObolError('UNAUTHORIZED', 'not your customer’s transaction');
    // The customer's own signature, with the session key of its temporary certificate.
    const sessionKid = await ctx.keys.addSpki(row.session_public_key);
    const record = await verifyMessage(msg.body.record, 'wallet.record', (k) => (k === sessionKid ? ctx.keys.get(k) : undefined), ctx.crypto);
    if (record.body.transactionId !== row.id) throw new ObolError('CONFLICT', 'the record is for another transaction');
    const [updated] = await ctx.db.query<AcqTransactionRow>(
      'UPDATE acq_transactions SET customer_record = $2::text::jsonb WHERE id = $1 AND customer_record IS NULL RETURNING *',
      [row.id, JSON.stringify(record)],
    );
    return tryClear(ctx, row.id, updated);
  }

  /** FIG 3 step 9: the merchant's record (with the wallet's last acceptance as proof). */
  async merchantRecord(body: unknown): Promise<Static<typeof RecordResponse>> {
    const ctx = this.ctx;
    const merchant = await merchantByKid(ctx, kidOf(body));
    const msg = await verifyMessage(body, 'merchant.record', () => merchant.key, ctx.crypto);
    const row = await this.fixedAtOpen(msg.body.transactionId);
    if (row.merchant_id !== merchant.id) throw new ObolError('UNAUTHORIZED', 'not your transaction');
    if (msg.body.proof) {
      const sessionKid = await ctx.keys.addSpki(row.session_public_key);
      const proof = await verifyMessage(msg.body.proof, 'wallet.accept', (k) => (k === sessionKid ? ctx.keys.get(k) : undefined), ctx.crypto);
      if (proof.body.transactionId !== row.id) throw new ObolError('CONFLICT', 'the proof is for another transaction');
    }
    const [updated] = await ctx.db.query<AcqTransactionRow>(
      'UPDATE acq_transactions SET merchant_record = $2::text::jsonb WHERE id = $1 AND merchant_record IS NULL RETURNING *',
      [row.id, JSON.stringify(msg)],
    );
    return tryClear(ctx, row.id, updated);
  }

  /** A merchant's own statement, asked with its own key (statement.ts). */
  merchantStatement(body: unknown) {
    return merchantStatement(this.ctx, body);
  }

  /** A merchant's refund after clearing (refunds.ts). */
  merchantRefund(body: unknown): Promise<Signed<'acquirer.refund'>> {
    return merchantRefund(this.ctx, body);
  }

  /** FIG 4 disputes: an arbiter we trust obtains K1 of one of our merchants' transactions. */
  arbiterKey(body: unknown): Promise<Signed<'acquirer.keyRelease'>> {
    return releaseK1(this.ctx, body);
  }

  /** FIG 3 step 10: clear one transaction when both records are in or its deadline has passed. */
  tryClear(transactionId: string): Promise<Static<typeof RecordResponse>> {
    return tryClear(this.ctx, transactionId);
  }

  /** The FIG 3 timers: settle what is past its deadline, re-send clearing information not yet delivered. */
  settleDeadlines() {
    return settleDeadlines(this.ctx);
  }
}
