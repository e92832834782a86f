import {
  ChallengeRequest,
  type ClearingsResponse,
  DemoTopUpRequest,
  type MerchantCertificateResponse,
  type RefundsResponse,
  RegisterCustomerRequest,
  type TransactionStatus,
} from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { compare, formatAmount, parseAmount } from '@obol/protocol/money';
import { checkSchema } from '@obol/protocol/messages';
import { type Signed, verifyMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import type { Static } from 'typebox';
import {
  amTransaction,
  applyClearing,
  applyClearings,
  customerRecord,
  fund,
  initiate,
  kidOf,
  merchantCertificate,
  releaseStalledInitiations,
  statusOf,
} from './accountManager.ts';
import type { OperatorContext } from './context.ts';
import { customerBalance, customerKey, customerOfToken, logon, newChallenge, registerCustomer } from './customers.ts';
import { applyRefund, customerRefunds } from './refunds.ts';

/**
 * The account manager (seed 202/204) as an agent: one method per protocol step, each taking the
 * unverified body (or the bearer token) as it arrived and returning the answer. Its whole world is
 * the operator's context — store, ledger, clock, and the `Http` it calls peers through — so a test
 * or the simulator can call a step directly, or put a fault between it and another operator by
 * handing the context another `Http`. The Fastify routes (routes/accountManager.ts) only map HTTP
 * to these methods.
 */
export class AccountManagerAgent {
  constructor(readonly ctx: OperatorContext) {}

  async exchangeTable() {
    return this.ctx.tables.current();
  }

  async registerCustomer(body: unknown) {
    checkSchema(RegisterCustomerRequest, body, 'registration');
    return registerCustomer(this.ctx, body.publicKey, body.displayName);
  }

  async challenge(body: unknown) {
    checkSchema(ChallengeRequest, body, 'challenge request');
    return newChallenge(this.ctx, body.customerId);
  }

  async login(body: unknown) {
    const kid = kidOf(body);
    const msg = await verifyMessage(body, 'wallet.login', () => customerKey(this.ctx, kid), this.ctx.crypto);
    if (msg.body.customerId !== msg.kid) throw new ObolError('BAD_SIGNATURE', 'the logon is not signed by that customer');
    return logon(this.ctx, msg.body.customerId, msg.body.challenge);
  }

  async balance(authorization: string | undefined) {
    const { customerId } = await customerOfToken(this.ctx, authorization);
    return customerBalance(this.ctx, customerId);
  }

  async demoTopUp(authorization: string | undefined, body: unknown) {
    const ctx = this.ctx;
    if (!ctx.config.demo) throw new ObolError('UNSUPPORTED_METHOD', 'top-ups by the wallet exist only in demo mode');
    const { customerId } = await customerOfToken(ctx, authorization);
    checkSchema(DemoTopUpRequest, body, 'top-up');
    const amount = parseAmount(body.amount);
    if (amount.currency !== ctx.config.currency) throw new ObolError('CURRENCY_MISMATCH', `top up in ${ctx.config.currency}`);
    const limit = parseAmount(ctx.config.demoTopUpLimit ?? `${ctx.config.currency}:500`);
    if (amount.value <= 0n || compare(amount, limit) > 0) {
      throw new ObolError('INVALID_AMOUNT', `a demo top-up is between 0 and ${formatAmount(limit)}`);
    }
    await fund(ctx, customerId, amount, `demo-top-up:${randomId()}`);
    return customerBalance(ctx, customerId);
  }

  /** FIG 2 steps 2–3 and 6–7: the wallet's initiation, vouched for to the acquirer. */
  initiate(body: unknown): Promise<Signed<'am.ack'>> {
    return initiate(this.ctx, body);
  }

  /**
   * Before a deposit: the merchant's certificate, fetched from its operator, checked, and
   * re-issued under our key, so the wallet can show the shopper who she would pay before any
   * money is reserved.
   */
  merchantCertificate(operatorId: string, merchantId: string): Promise<MerchantCertificateResponse> {
    return merchantCertificate(this.ctx, operatorId, merchantId);
  }

  /** FIG 3 step 8: the wallet's record, kept and forwarded to the acquirer. */
  customerRecord(body: unknown) {
    return customerRecord(this.ctx, body);
  }

  async transaction(authorization: string | undefined, transactionId: string): Promise<TransactionStatus> {
    const { customerId } = await customerOfToken(this.ctx, authorization);
    const row = await amTransaction(this.ctx, transactionId);
    if (!row || row.customer_id !== customerId) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${transactionId} of yours`);
    const status = statusOf(row);
    // Refunds after clearing (refunds.ts), oldest first, each in the shopper's currency.
    const refunded = await customerRefunds(this.ctx, customerId, row.id);
    return refunded.length > 0 ? { ...status, refunds: refunded.reverse() } : status;
  }

  /** Clearing information from the acquirer of the merchant's operator (FIG 3 step 10 → 11). */
  async clearing(body: unknown) {
    const peer = await this.ctx.peers.byKeyId(kidOf(body));
    if (!peer) throw new ObolError('UNKNOWN_KEY', 'clearing information from an unknown operator');
    const msg = await verifyMessage(body, 'acquirer.clearing', () => peer.key, this.ctx.crypto);
    return applyClearing(this.ctx, msg, peer.operatorId);
  }

  /**
   * Clearing information for many transactions in one message from the acquirer: its one
   * signature checked, each item applied (many in one database transaction) and answered on its own.
   */
  async clearings(body: unknown): Promise<ClearingsResponse> {
    const peer = await this.ctx.peers.byKeyId(kidOf(body));
    if (!peer) throw new ObolError('UNKNOWN_KEY', 'clearing information from an unknown operator');
    const msg = await verifyMessage(body, 'acquirer.clearings', () => peer.key, this.ctx.crypto);
    const results = await applyClearings(this.ctx, msg.body.clearings, peer);
    return { results: results.map((r) => ('ok' in r ? r : { error: itemError(r.error, this.ctx) })) };
  }

  /** A refund after clearing from the acquirer (refunds.ts): the shopper is credited in her currency. */
  async refund(body: unknown) {
    const peer = await this.ctx.peers.byKeyId(kidOf(body));
    if (!peer) throw new ObolError('UNKNOWN_KEY', 'a refund from an unknown operator');
    const msg = await verifyMessage(body, 'acquirer.refund', () => peer.key, this.ctx.crypto);
    return applyRefund(this.ctx, msg, peer.operatorId);
  }

  async refunds(authorization: string | undefined): Promise<Static<typeof RefundsResponse>> {
    const { customerId } = await customerOfToken(this.ctx, authorization);
    return { refunds: await customerRefunds(this.ctx, customerId) };
  }

  /** The timer's part: deposits whose initiation was cut half-way go back. */
  releaseStalledInitiations(olderThanMs?: number): Promise<number> {
    return releaseStalledInitiations(this.ctx, olderThanMs);
  }
}

/**
 * One item's refusal as the batch's answer carries it: a catalogue error as it is, anything else
 * (a database failure) as INTERNAL, logged here and said nothing of, as an HTTP answer would.
 */
function itemError(e: unknown, ctx: OperatorContext): ReturnType<ObolError['toJSON']> {
  if (e instanceof ObolError && e.name !== 'INTERNAL') return e.toJSON();
  ctx.log.error({ err: e }, 'a clearing of a batch could not be applied');
  return new ObolError('INTERNAL', 'this clearing could not be applied').toJSON();
}
