import { type CustomerRefund, MerchantSessionView, RecordResponse, RefundsResponse, TransactionStatus, sessionReadAuthorization } from '../api.ts';
import { ObolError } from '../errors.ts';
import { bearer } from '../http.ts';
import { parseTradeHandle, parseTransactionIdentity } from '../identity.ts';
import { generateSigningKeyPair, keyHandle } from '../keys.ts';
import { checkSchema } from '../messages.ts';
import { compare, formatAmount, max, parseAmount, sub, zero } from '../money.ts';
import { type CertDescription, parseCert, verifyChain } from '../pki.ts';
import { type RefundLine, recordPurchasesHash, recordTotal, recordTotalText } from '../purchaseList.ts';
import { type Signed, signMessage, verifyMessage } from '../signed.ts';
import type { AccountRecord, ClearingResult, RefundEntry, StopReason, TransactionRecord, TransactionState } from '../walletStore.ts';
import { randomId } from '../webcrypto.ts';
import { coverIn, merchantInfo, validTable } from './account.ts';
import { refundLinesInCustomerCurrency } from './figures.ts';
import { type AgentCore, baseUrl, errorJson, isAuthError, isRefusal } from './core.ts';
import { completeAccept, sessionSigner } from './purchase.ts';

/** What the UI may show of a transaction: plain JSON, no keys. */
export interface TransactionView {
  id: string;
  transactionId?: string;
  /** The trade handle the merchant knows the transaction by. */
  handle?: string;
  state: TransactionState;
  merchantId: string;
  merchantName: string;
  merchantUrl: string;
  origin?: string;
  depositCustomer: string;
  depositMerchant?: string;
  rate?: string;
  /** Accepted so far, merchant currency. */
  cumulative: string;
  /** Deposit left, merchant currency (open transactions). */
  remaining?: string;
  count: number;
  expiresAt?: number;
  createdAt: number;
  closeReason?: StopReason;
  clearing?: ClearingResult;
  /** Refunds after clearing, in the shopper's currency (and the merchant's). */
  refunds?: RefundEntry[];
  /**
   * What the session's record reports, merchant currency, when refund lines before clearing lower
   * it: `cumulative` less the lines (purchaseList.ts `recordTotal`). Absent: `cumulative`.
   */
  total?: string;
  error?: { name: string; message: string };
  /** A purchase is in flight (an order or accept waiting for an answer). */
  pending: boolean;
}

export function transactionView(tx: TransactionRecord): TransactionView {
  const view: TransactionView = {
    id: tx.id,
    state: tx.state,
    merchantId: tx.merchantId,
    merchantName: tx.merchantName,
    merchantUrl: tx.merchantUrl,
    depositCustomer: tx.depositCustomer,
    cumulative: tx.cumulative,
    count: tx.lines.length,
    createdAt: tx.createdAt,
    pending: tx.pending !== undefined,
  };
  if (tx.transactionId) view.transactionId = tx.transactionId;
  if (tx.handle) view.handle = tx.handle;
  if (tx.origin) view.origin = tx.origin;
  if (tx.depositMerchant) {
    view.depositMerchant = tx.depositMerchant;
    view.remaining = formatAmount(remaining(tx));
  }
  if (tx.rate) view.rate = tx.rate;
  if (tx.expiresAt !== undefined) view.expiresAt = tx.expiresAt;
  if (tx.closeReason) view.closeReason = tx.closeReason;
  if (tx.clearing) view.clearing = tx.clearing;
  if (tx.refundLines && tx.refundLines.length > 0) view.total = recordTotalText(tx.cumulative, tx.lines, refundLinesOf(tx));
  const refunds = [...refundLineEntries(tx), ...(tx.refunds ?? [])];
  if (refunds.length > 0) view.refunds = refunds;
  if (tx.error) view.error = tx.error;
  return view;
}

/** The refund lines before clearing as history entries, in the shopper's currency by the bank's rule. */
function refundLineEntries(tx: TransactionRecord): RefundEntry[] {
  const lines = tx.refundLines ?? [];
  if (lines.length === 0 || !tx.rate) return [];
  const figures = refundLinesInCustomerCurrency(tx.depositCustomer, tx.rate, tx.cumulative, lines.map((l) => l.body.amount));
  return lines.map((l, i) => ({
    n: l.body.n,
    amount: formatAmount(figures[i]!),
    amountMerchant: l.body.amount,
    time: l.body.time,
    beforeClearing: { refundId: l.body.refundId },
  }));
}

/** Deposit left in the merchant's currency. */
export function remaining(tx: TransactionRecord) {
  const used = parseAmount(tx.cumulative);
  return tx.depositMerchant ? sub(parseAmount(tx.depositMerchant), used) : zero(used.currency);
}

async function save(core: AgentCore, tx: TransactionRecord): Promise<void> {
  tx.updatedAt = core.now();
  await core.store.putTransaction(tx);
}

export async function requireTransaction(core: AgentCore, transactionId: string): Promise<TransactionRecord> {
  const tx = await core.store.getTransaction(transactionId);
  if (!tx) throw new ObolError('UNKNOWN_TRANSACTION', `this wallet has no transaction ${transactionId}`);
  return tx;
}

/** The table a deposit is sized with must stay valid at least this long. */
const TABLE_MARGIN_MS = 30_000;

export interface OpenRequest {
  merchantUrl: string;
  /** The price of the purchase that opens the deposit, in the merchant's currency. */
  firstPrice: string;
  /** The page origin, taken from the browser: the merchant's certificate must name it. */
  origin?: string;
}

/**
 * FIG 2 step 2: size the deposit, make the session key, K1 and the list salt, sign the initiation
 * with the long-term key and store it BEFORE sending it (the operator handles a msgId once, so a
 * restarted agent resends the very same message); then step 7's checks in `finishInitiation`.
 */
export async function openTransaction(core: AgentCore, req: OpenRequest): Promise<TransactionRecord> {
  const account = await core.account();
  const login = await core.ensureLogin();
  const merchantUrl = baseUrl(req.merchantUrl);
  const info = await merchantInfo(core, merchantUrl);
  if (req.origin !== undefined && !info.origins.includes(req.origin)) {
    throw new ObolError('MERCHANT_NOT_TRUSTED', `merchant ${info.merchantId} does not sell on ${req.origin}`);
  }
  const firstPrice = parseAmount(req.firstPrice);
  if (firstPrice.currency !== info.currency) {
    throw new ObolError('CURRENCY_MISMATCH', `merchant ${info.merchantId} prices in ${info.currency}, not ${firstPrice.currency}`);
  }
  if (firstPrice.value < 0n) throw new ObolError('INVALID_AMOUNT', 'a price cannot be negative');
  // A table about to expire is refreshed first: the operator refuses a deposit at an expired one.
  const table = await validTable(core, TABLE_MARGIN_MS);
  let deposit = coverIn(table, firstPrice, account.currency);
  const minimum = typeof core.policy.minimum === 'function' ? core.policy.minimum() : core.policy.minimum;
  if (minimum !== undefined) deposit = max(parseAmount(minimum), deposit);
  if (deposit.value <= 0n) throw new ObolError('INVALID_AMOUNT', 'a deposit must be more than zero');

  const session = await keyHandle(await generateSigningKeyPair(false, core.crypto), core.crypto);
  const k1 = randomId(32, core.crypto);
  const listSalt = randomId(16, core.crypto);
  const now = core.now();
  const initiate = await signMessage(
    'wallet.initiate',
    {
      msgId: core.newId(),
      sessionId: login.sessionId,
      merchantId: info.merchantId,
      merchantOperatorId: info.operatorId,
      firstPrice: formatAmount(firstPrice),
      deposit: formatAmount(deposit),
      timeoutSec: core.policy.timeoutSec,
      sessionPublicKey: session.publicKeySpki,
      k1,
      shownTableIssuedAt: table.issuedAt,
      time: now,
    },
    core.accountSigner(account),
  );
  const tx: TransactionRecord = {
    id: core.newId(),
    state: 'initiating',
    merchantId: info.merchantId,
    merchantName: info.name,
    merchantUrl,
    merchantOperatorId: info.operatorId,
    merchantCurrency: info.currency,
    sessionKeys: { publicKey: session.publicKey, privateKey: session.privateKey },
    sessionPublicKey: session.publicKeySpki,
    sessionKid: session.kid,
    initiate,
    k1,
    listSalt,
    firstPrice: formatAmount(firstPrice),
    depositCustomer: formatAmount(deposit),
    timeoutSec: core.policy.timeoutSec,
    nextN: 1,
    lines: [],
    cumulative: formatAmount(zero(info.currency)),
    createdAt: now,
    updatedAt: now,
  };
  if (req.origin !== undefined) tx.origin = req.origin;
  await core.store.putTransaction(tx);
  return finishInitiation(core, tx);
}

/**
 * Sends the stored initiation (again, if it was sent before) and checks the acknowledgement:
 * signed by our operator; our deposit; a temporary certificate for our session key and this
 * transaction; the merchant's certificate re-issued by our operator, naming the merchant (and the
 * page origin). The deposit is reserved once the operator has acknowledged, so when a check fails
 * after that the wallet reports an empty record at once and the deposit comes back.
 */
export async function finishInitiation(core: AgentCore, tx: TransactionRecord): Promise<TransactionRecord> {
  const account = await core.account();
  let body: unknown;
  try {
    body = await sendInitiation(core, account, tx);
  } catch (e) {
    if (isRefusal(e)) {
      tx.state = 'failed';
      tx.error = { name: e.name, message: e.message };
      await save(core, tx);
    }
    throw e;
  }
  let ack: Signed<'am.ack'>;
  try {
    ack = await verifyMessage(body, 'am.ack', await core.operatorResolver(account), core.crypto);
    parseTransactionIdentity(ack.body.transactionId);
    parseTradeHandle(ack.body.handle);
    if (!ack.body.transactionId.startsWith(`${tx.initiate.body.sessionId}.`)) {
      throw new ObolError('INVALID_IDENTITY', `transaction ${ack.body.transactionId} is not in session ${tx.initiate.body.sessionId}`);
    }
  } catch (e) {
    // We cannot tell which transaction this answer is for: nothing to report against.
    tx.state = 'failed';
    tx.error = errorJson(e);
    await save(core, tx);
    throw e;
  }
  const a = ack.body;
  tx.transactionId = a.transactionId;
  tx.handle = a.handle;
  tx.depositMerchant = a.depositMerchant;
  tx.rate = a.rate;
  tx.expiresAt = a.expiresAt;
  tx.tempCert = a.tempCert;
  tx.merchantCert = a.merchantCert;
  try {
    tx.merchantOrigins = await checkAck(core, account, tx, a);
  } catch (e) {
    tx.state = 'closed';
    tx.closeReason = 'wallet';
    tx.error = errorJson(e);
    await save(core, tx);
    await report(core, tx).catch(() => undefined); // stays 'closed' if unreachable: recover() retries
    throw e;
  }
  tx.state = 'open';
  await save(core, tx);
  return tx;
}

/**
 * Resends a stored initiation; when there is still no answer and the session it asked for would
 * have timed out by now, gives it up ('failed'): were a deposit reserved all the same, the
 * operators' deadline rules give it back (no merchant record ever comes).
 */
export async function retryInitiation(core: AgentCore, tx: TransactionRecord): Promise<TransactionRecord> {
  try {
    return await finishInitiation(core, tx);
  } catch (e) {
    if (isRefusal(e) || core.now() <= tx.createdAt + tx.timeoutSec * 1000) throw e;
    tx.state = 'failed';
    tx.error = { name: 'TIMEOUT', message: `the operator never answered the initiation: ${errorJson(e).message}` };
    await save(core, tx);
    throw e;
  }
}

async function sendInitiation(core: AgentCore, account: AccountRecord, tx: TransactionRecord): Promise<unknown> {
  const url = core.operatorUrl(account, '/v1/initiate');
  const login = await core.store.getLogin();
  const headers = login && login.sessionId === tx.initiate.body.sessionId ? bearer(login.token) : undefined;
  try {
    return await core.postTwice(url, tx.initiate, headers);
  } catch (e) {
    if (!isAuthError(e) && !(e instanceof ObolError && e.name === 'UNKNOWN_SESSION')) throw e;
    // The operator refused our logon session, so it reserved nothing: sign again under a new one.
    const fresh = await core.login();
    tx.initiate = await signMessage(
      'wallet.initiate',
      { ...tx.initiate.body, msgId: core.newId(), sessionId: fresh.sessionId, time: core.now() },
      core.accountSigner(account),
    );
    await save(core, tx);
    return core.postTwice(url, tx.initiate, bearer(fresh.token));
  }
}

async function checkAck(core: AgentCore, account: AccountRecord, tx: TransactionRecord, a: Signed<'am.ack'>['body']): Promise<string[]> {
  const now = core.now();
  if (compare(parseAmount(a.depositCustomer), parseAmount(tx.depositCustomer)) !== 0) {
    throw new ObolError('CONFLICT', `the operator reserved ${a.depositCustomer}, the wallet asked for ${tx.depositCustomer}`);
  }
  const depositMerchant = parseAmount(a.depositMerchant);
  const firstPrice = parseAmount(tx.firstPrice);
  if (depositMerchant.currency !== tx.merchantCurrency || compare(depositMerchant, firstPrice) < 0) {
    throw new ObolError('CONFLICT', `a deposit of ${a.depositMerchant} does not cover the first price ${tx.firstPrice}`);
  }
  const operatorCert = parseCert(account.operatorCert);
  // Both chains checked side by side (their signature checks overlap), judged in this order.
  const tempChecked = verifyChain(a.tempCert, { trustedIssuers: [operatorCert] }, { now, expectKind: 'temporary' }, core.crypto);
  const merchantChecked = verifyChain(a.merchantCert, { trustedIssuers: [operatorCert] }, { now, expectKind: 'merchant' }, core.crypto);
  merchantChecked.catch(() => undefined); // awaited below, after the temporary certificate
  const temp = await tempChecked;
  // It names the trade handle (what the merchant sees), never our TransactionIdentity.
  if (temp.publicKeySpki !== tx.sessionPublicKey || temp.transactionId !== a.handle) {
    throw new ObolError('CERT_UNTRUSTED', 'the temporary certificate is not for this session key and transaction');
  }
  let merchant: CertDescription;
  try {
    merchant = await merchantChecked;
  } catch (e) {
    throw new ObolError('MERCHANT_NOT_TRUSTED', `the merchant's certificate does not verify: ${(e as Error).message}`);
  }
  if (merchant.merchantId !== tx.merchantId) {
    throw new ObolError('MERCHANT_NOT_TRUSTED', `the certificate is for merchant ${merchant.merchantId}, not ${tx.merchantId}`);
  }
  const origins = merchant.origins ?? [];
  if (tx.origin !== undefined && !origins.includes(tx.origin)) {
    throw new ObolError('MERCHANT_NOT_TRUSTED', `merchant ${tx.merchantId} is not certified for ${tx.origin}`);
  }
  return origins;
}

/**
 * Ends a session for `reason`: marks it closed (stored first), tells the merchant when asked to
 * (a stop the merchant no longer needs — SESSION_CLOSED — or cannot get is no obstacle), and sends
 * the customer record. A report that cannot be sent leaves the transaction 'closed' for `recover`.
 */
export async function closeTransaction(
  core: AgentCore,
  tx: TransactionRecord,
  reason: StopReason,
  opts: { notifyMerchant: boolean; throwReportErrors?: boolean },
): Promise<TransactionRecord> {
  if (tx.state === 'open') {
    tx.state = 'closed';
    tx.closeReason = reason;
    tx.pending = undefined;
    await save(core, tx);
    if (opts.notifyMerchant && tx.handle) {
      const stop = await signMessage(
        'wallet.stop',
        { msgId: core.newId(), transactionId: tx.handle, reason, time: core.now() },
        sessionSigner(core, tx),
      );
      let answer: unknown;
      try {
        answer = await core.postTwice(`${tx.merchantUrl}/stop`, { stop });
      } catch {
        // SESSION_CLOSED: the merchant closed first. Anything else: its timer closes the session;
        // either way clearing needs only the records.
      }
      // The merchant's refund lines before clearing, so that our record agrees with its record.
      if (answer !== undefined && (await learnRefundLines(core, tx, answer)) > 0) await save(core, tx);
    }
  }
  if (tx.state !== 'closed') return tx;
  try {
    await report(core, tx);
  } catch (e) {
    if (opts.throwReportErrors) throw e;
  }
  return tx;
}

function refundLinesOf(tx: TransactionRecord): RefundLine[] {
  return (tx.refundLines ?? []).map((l) => l.body);
}

/**
 * Takes the refund lines before clearing from a merchant's answer (its stop): each must verify as
 * signed by this transaction's merchant, name this transaction, and keep to the one rule
 * (`recordTotal`: an accepted purchase, never more than it cost, each refundId once); one that does
 * not is left out (our record then disagrees and clearing settles at the proven amount, flagged).
 * Once our record is signed nothing is added: it is resent unchanged. Returns how many were new.
 */
export async function learnRefundLines(core: AgentCore, tx: TransactionRecord, answer: unknown): Promise<number> {
  if (tx.record || !tx.merchantCert || !tx.handle) return 0;
  const offered = (answer as { refundLines?: unknown } | null)?.refundLines;
  if (!Array.isArray(offered) || offered.length === 0) return 0;
  const resolve = await core.certResolver(tx.merchantCert);
  const known = new Map((tx.refundLines ?? []).map((l) => [l.body.refundId, l]));
  let added = 0;
  for (const message of offered.slice(0, 1000)) {
    let line: Signed<'merchant.refundLine'>;
    try {
      line = await verifyMessage(message, 'merchant.refundLine', resolve, core.crypto);
    } catch {
      continue;
    }
    if (line.body.transactionId !== tx.handle || known.has(line.body.refundId)) continue;
    try {
      recordTotal(tx.cumulative, tx.lines, [...[...known.values()].map((l) => l.body), line.body]);
    } catch {
      continue;
    }
    known.set(line.body.refundId, line);
    added++;
  }
  if (added > 0) tx.refundLines = [...known.values()];
  return added;
}

/** The shopper (or the wallet) ends a transaction: the last accept in flight goes first. */
export async function endTransaction(core: AgentCore, transactionId: string, reason: StopReason = 'wallet'): Promise<TransactionRecord> {
  const tx = await requireTransaction(core, transactionId);
  if (tx.state === 'open' && tx.pending?.accept) {
    // The merchant may hold this accept already: book it so both records agree.
    await completeAccept(core, tx).catch(() => undefined);
  }
  return closeTransaction(core, tx, reason, { notifyMerchant: true, throwReportErrors: true });
}

/**
 * FIG 3 step 8: the customer transaction record, signed with the session key and stored before it
 * is sent (resent unchanged, same msgId). An empty list hashes to the constant the merchant uses too
 * (`recordPurchasesHash`): the merchant may never have seen our salt.
 */
export async function report(core: AgentCore, tx: TransactionRecord): Promise<TransactionRecord> {
  if (!tx.transactionId || !tx.handle) throw new ObolError('UNKNOWN_TRANSACTION', 'this transaction was never opened');
  if (tx.state === 'cleared' || tx.state === 'failed' || tx.state === 'initiating') return tx;
  if (tx.state === 'open') {
    tx.state = 'closed';
    tx.closeReason = 'wallet';
  }
  if (!tx.record) {
    tx.pending = undefined;
    tx.record = await signMessage(
      'wallet.record',
      {
        msgId: core.newId(),
        // Signed for the acquirer too (our operator forwards it): the trade handle.
        transactionId: tx.handle,
        count: tx.lines.length,
        // Refund lines before clearing lower the total and are covered by the hash (one rule with the merchant).
        total: recordTotalText(tx.cumulative, tx.lines, refundLinesOf(tx)),
        purchasesHash: await recordPurchasesHash(tx.listSalt, tx.lines, core.crypto, refundLinesOf(tx)),
        time: core.now(),
      },
      sessionSigner(core, tx),
    );
  }
  await save(core, tx);
  const account = await core.account();
  const body = await core.postTwice(core.operatorUrl(account, '/v1/records'), tx.record);
  checkSchema(RecordResponse, body, 'record response');
  if (body.clearing) {
    tx.state = 'cleared';
    tx.clearing = clearingOf(body.clearing);
  } else if (tx.state === 'closed') {
    tx.state = 'reported';
  }
  await save(core, tx);
  return tx;
}

function clearingOf(signed: { body: object }): ClearingResult {
  const b = signed.body as Record<string, unknown>;
  const result: ClearingResult = { clearing: signed };
  if (typeof b.outcome === 'string') result.outcome = b.outcome;
  if (typeof b.flagged === 'boolean') result.flagged = b.flagged;
  if (typeof b.charged === 'string') result.chargedMerchant = b.charged;
  if (typeof b.unused === 'string') result.unusedMerchant = b.unused;
  return result;
}

/** What our operator says of a transaction; a cleared one is stored as cleared. */
export async function transactionStatus(core: AgentCore, transactionId: string): Promise<TransactionStatus> {
  const account = await core.account();
  const status = await core.withLogin(async (_login, headers) => {
    const body = await core.http.get(core.operatorUrl(account, `/v1/transactions/${encodeURIComponent(transactionId)}`), headers);
    checkSchema(TransactionStatus, body, 'transaction status');
    return body;
  });
  const tx = await core.store.getTransaction(transactionId);
  if (tx && status.state === 'cleared') {
    tx.state = 'cleared';
    const clearing: ClearingResult = status.clearing ? clearingOf(status.clearing) : { ...tx.clearing };
    if (status.outcome !== undefined) clearing.outcome = status.outcome;
    if (status.flagged !== undefined) clearing.flagged = status.flagged;
    if (status.chargedMerchant !== undefined) clearing.chargedMerchant = status.chargedMerchant;
    if (status.chargedCustomer !== undefined) clearing.chargedCustomer = status.chargedCustomer;
    if (status.refundCustomer !== undefined) clearing.refundCustomer = status.refundCustomer;
    tx.clearing = clearing;
    if (status.refunds) mergeRefunds(tx, status.refunds);
    await save(core, tx);
  }
  return status;
}

/**
 * Refunds after clearing (issue 14): asks our operator for the customer's refunds and keeps each
 * with its transaction, once by number. Returns how many were new. The operator books them; the
 * wallet only learns of them, when it next talks to its operator.
 */
export async function refreshRefunds(core: AgentCore): Promise<number> {
  const account = await core.account();
  const refunds = await core.withLogin(async (_login, headers) => {
    const body = await core.http.get(core.operatorUrl(account, '/v1/refunds'), headers);
    checkSchema(RefundsResponse, body, 'refunds');
    return body.refunds;
  });
  const byTransaction = new Map<string, CustomerRefund[]>();
  for (const r of refunds) byTransaction.set(r.transactionId, [...(byTransaction.get(r.transactionId) ?? []), r]);
  let added = 0;
  for (const [transactionId, list] of byTransaction) {
    const tx = await core.store.getTransaction(transactionId);
    if (!tx) continue;
    const before = tx.refunds?.length ?? 0;
    mergeRefunds(tx, list);
    if ((tx.refunds?.length ?? 0) > before) {
      added += (tx.refunds?.length ?? 0) - before;
      await save(core, tx);
    }
  }
  return added;
}

/** Keep each refund once, by its number, in order. */
function mergeRefunds(tx: TransactionRecord, refunds: readonly CustomerRefund[]): void {
  const known = new Map((tx.refunds ?? []).map((r) => [r.n, r]));
  for (const r of refunds) if (!known.has(r.n)) known.set(r.n, { n: r.n, amount: r.amount, amountMerchant: r.amountMerchant, time: r.time });
  tx.refunds = [...known.values()].sort((a, b) => a.n - b.n);
}

/**
 * The merchant's view of a trading session (deposit, spent, count, its report), asked for with a
 * read signed by the session key: the merchant shows a session to no one but its wallet and the
 * shop's administration. Each call signs a new read (the merchant takes each one once).
 */
export async function merchantSession(core: AgentCore, transactionId: string): Promise<MerchantSessionView> {
  const tx = await requireTransaction(core, transactionId);
  // The merchant knows the transaction by its trade handle only.
  const handle = tx.handle;
  if (!handle) throw new ObolError('UNKNOWN_TRANSACTION', 'the transaction is not open yet');
  const read = await signMessage('wallet.sessionRead', { msgId: core.newId(), transactionId: handle, time: core.now() }, sessionSigner(core, tx));
  const body = await core.http.get(`${tx.merchantUrl}/sessions/${encodeURIComponent(handle)}`, {
    authorization: sessionReadAuthorization(read),
  });
  checkSchema(MerchantSessionView, body, 'the merchant’s view of the session');
  if (body.transactionId !== handle) throw new ObolError('MALFORMED', `the merchant answered for transaction ${body.transactionId}, not ${handle}`);
  return body;
}
