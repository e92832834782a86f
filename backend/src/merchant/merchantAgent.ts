/**
 * The merchant agent (DESIGN.md: "Purchases inside a trading session", FIG 2 steps 4–5, FIG 3
 * step 9): the logic of the merchant module, with no HTTP in it, so the Fastify plugin, the CLI
 * and the tests all call the same methods.
 *
 * Trust. The merchant trusts exactly one party: its own operator, through `operatorCert`. The
 * operator's information message opens a trading session and carries the wallet's temporary
 * certificate re-issued by that operator; from then on the wallet's session key (imported once per
 * session and cached) is the only key that can order, accept or stop in that session.
 *
 * Money. Nothing is charged when an order is delivered; a purchase counts only when the wallet's
 * signed accept is recorded, and the accept's cumulative total must equal what was accepted before
 * plus this price, never more than the deposit. The latest accept is the proof sent at clearing,
 * so the merchant can never claim more than the highest cumulative total the wallet signed.
 *
 * Delivery (FIG 4). Products are encrypted once with their own K2 and signed once when they are
 * added (products.ts). An order is answered with the signed encrypted product, its ciphertext and
 * the signed description — nothing made for it; the accept is answered with sign_M([K2]^K1), K2
 * of the version delivered wrapped with the K1 the trusted party relayed at initiation, stored
 * with the accept so that a replay gets the very same key.
 *
 * Durability. Every decision is one database transaction; the merchant record is stored in the
 * transaction that closes the session and sent afterwards, at least once, until the acquirer
 * answers 2xx (`sweep()` retries). Handling any message twice changes nothing the second time.
 */
import { IdempotencyKeys } from '../http/idempotency.ts';
import { serverCrypto } from '../crypto/nodeCrypto.ts';
import { fileURLToPath } from 'node:url';
import {
  type AcceptResponse,
  AcceptRequest,
  type MerchantPublicInfo,
  type MerchantSessionView,
  type OrderResponse,
  OrderRequest,
  OperatorPaths,
  RedeliverRequest,
  type RedeliverResponse,
  type ProductListing,
  type ProductView,
  RecordResponse,
  type RefundResponse,
  SESSION_READ_WINDOW_MS,
  type StopResponse,
  StopRequest,
  sessionReadFromAuthorization,
} from '@obol/protocol/api';
import { canonicalJson } from '@obol/protocol/canonicalJson';
import type { Clock } from '@obol/protocol/clock';
import { BoundedCache } from '@obol/protocol/boundedCache';
import { type ProductInput, importK1ForWrap, wrapImportedProductKey } from '@obol/protocol/delivery';
import { ObolError } from '@obol/protocol/errors';
import { EVIDENCE_FORMAT, type EvidenceBundle } from '@obol/protocol/evidence';
import { TRADE_HANDLE_PATTERN } from '@obol/protocol/identity';
import { type KeyHandle, type KeyResolver, importPublicKey, keyIdOf } from '@obol/protocol/keys';
import { checkSchema, type MessageBody } from '@obol/protocol/messages';
import { type Amount, formatAmount, parseAmount } from '@obol/protocol/money';
import { type Cert, type CertDescription, certToBase64, describeCert, operatorMessageKey, parseCert, verifyChain } from '@obol/protocol/pki';
import { type PurchaseLine, purchaseCommitment, recordPurchasesHash, recordTotal, recordTotalText } from '@obol/protocol/purchaseList';
import { type Signed, signMessage, verifyMessage } from '@obol/protocol/signed';
import { type WebCrypto, fromBase64Url, randomId } from '@obol/protocol/webcrypto';
import type { Static } from 'typebox';
import { backoffDelay } from '@obol/protocol/backoff';
import { isFinalRefusal } from '../http/errors.ts';
import { enqueue, OutboxDispatcher } from '../store/outbox.ts';
import { type Db, type Queryable, type TransactionOptions, isRetryable, sqlState } from '../store/db.ts';
import { loadMigrations, type MigrateResult, migrate } from '../store/migrate.ts';
import type { Catalogue } from './catalogue.ts';
import { type SalesReport, salesReport } from './sales.ts';
import { type HttpPost, type UndiciPost, undiciPost } from './http.ts';
import { type SealKeys, resealColumn } from '../store/sealedColumn.ts';
import { GroupWriter } from './groupCommit.ts';
import { type AddProductOptions, K2_COLUMN, ProductCatalogue, type ReadyVersion, type StoredProduct, currentVersionCheck, listingOf } from './products.ts';

/** Where a session's K1 is sealed: the AAD names this column and the transaction id. */
export const SESSION_K1_COLUMN = 'merchant_sessions.k1';

// ── configuration ────────────────────────────────────────────────────────────────────────────

/** The pino-style logger the agent writes to (Fastify's `app.log` fits). */
export interface MerchantLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MerchantConfig {
  merchantId: string;
  /** Shown to shoppers. */
  name: string;
  /** The merchant's signing key: signs acks, merchant records and (FIG 4) products, descriptions and wrapped keys. */
  key: KeyHandle;
  /** The merchant's certificate from its operator (base64url DER, PEM, or parsed). */
  merchantCert: Cert | string;
  /** Its own operator's certificate: the only issuer it trusts. */
  operatorCert: Cert | string;
  /**
   * Its operator's message-signing certificate (issued by operatorCert): the only key the
   * operator's messages (information, clearing) may be signed with. Not the issuing key.
   */
  operatorSigningCert: Cert | string;
  operatorId: string;
  /** Base URL of the operator server, e.g. http://127.0.0.1:7100 (no trailing slash needed). */
  operatorUrl: string;
  currency: string;
  /** The web origins the shop sells on; every order must name one. */
  origins: string[];
  /**
   * Products the shop defines in code (e.g. `memoryCatalogue`): prepared (encrypted once, signed
   * once) when the agent opens, unless already prepared as they are. More are added with
   * `addProduct`; either way they live in the merchant's database.
   */
  catalogue?: Catalogue;
  /** The merchant's own database (never an operator's). */
  db: Db;
  /**
   * The shop's data key(s): K1 and K2 are sealed under them in `db` (sealedColumn.ts). Kept outside
   * the database — `loadOrCreateSealKeys(<the shop's key folder>)`, or given in memory for an
   * in-memory database. The same keys on every start and in every process of the shop.
   */
  sealKeys: SealKeys;
  clock: Clock;
  /** POST JSON to the operator. Default: undici with keep-alive. */
  http?: HttpPost;
  /** Default: the servers' handle (node:crypto for ES256 and SHA-256, crypto.subtle for the rest). */
  crypto?: WebCrypto;
  log?: MerchantLogger;
}

export const MERCHANT_MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** Bring the merchant database's schema up to date (safe on every start, from several processes). */
export async function migrateMerchantDb(db: Db): Promise<MigrateResult> {
  return migrate(db, await loadMigrations(MERCHANT_MIGRATIONS_DIR));
}

// ── the purchase-list hash of a merchant record ─────────────────────────────────────────────

/** One rule for wallet and merchant, in protocol/ (see there). */
export { EMPTY_LIST_SALT, recordPurchasesHash } from '@obol/protocol/purchaseList';

// ── what the agent hands back ────────────────────────────────────────────────────────────────

export type SessionState = 'open' | 'closing' | 'reported' | 'cleared';
export type CloseReason = 'wallet' | 'merchant' | 'deposit-used' | 'timer';

/** A session as its wallet and the shop's own pages see it (never K1): the HTTP contract's MerchantSessionView. */
export type SessionView = MerchantSessionView;

export interface SweepResult {
  /** Sessions this sweep closed because their timer ran out. */
  closed: string[];
  /** Transactions whose record the acquirer acknowledged during this sweep. */
  reported: string[];
  /** Transactions whose timer close or record delivery failed this time (each tried again later, on its own). */
  failed: string[];
}

export type OrderResponseBody = Static<typeof OrderResponse>;
export type AcceptResponseBody = Static<typeof AcceptResponse>;
export type StopResponseBody = Static<typeof StopResponse>;
export type RedeliverResponseBody = Static<typeof RedeliverResponse>;
export type MerchantPublicInfoBody = Static<typeof MerchantPublicInfo>;
type RecordResponseBody = Static<typeof RecordResponse>;

// ── rows ─────────────────────────────────────────────────────────────────────────────────────

interface SessionRow {
  transaction_id: string;
  info_msg_id: string;
  ack: Signed<'merchant.ack'>;
  pseudonym: string;
  currency: string;
  deposit: bigint;
  spent: bigint;
  count: number;
  session_key: string;
  session_kid: string;
  /**
   * K1 as the trusted party relayed it (FIG 4), sealed under the shop's data key (SESSION_K1_COLUMN):
   * wraps K2 for this session's shopper. Never shown.
   */
  k1_sealed: string;
  expires_at: bigint;
  list_salt: string | null;
  latest_accept: Signed<'wallet.accept'> | null;
  state: SessionState;
  close_reason: CloseReason | null;
}

/** The columns of an order an accept is judged on. */
const ACCEPT_ORDER_COLUMNS = 'n, accept_id, accept_msg, cumulative, key_msg, product_id, price, amount, content_hash, description_hash';

const SESSION_COLUMNS = `transaction_id, info_msg_id, ack, pseudonym, currency, deposit, spent, count, session_key,
  session_kid, k1_sealed, expires_at, list_salt, latest_accept, state, close_reason`;

interface OrderRow {
  n: number;
  product_id: string;
  price: string;
  amount: bigint;
  /** SHA-256 of what was delivered: the prepared ciphertext. */
  content_hash: string;
  description_hash: string | null;
  accept_id: string | null;
  accept_msg: Signed<'wallet.accept'> | null;
  cumulative: bigint | null;
  key_msg: Signed<'merchant.key'> | null;
}

interface RecordRow {
  msg_id: string;
  transaction_id: string;
  record: Signed<'merchant.record'>;
  sent_at: bigint | null;
  operator_state: string | null;
}

/** The outbox topic of merchant records to the acquirer (FIG 3 step 9). */
const RECORD_TOPIC = 'merchant-record';

/** A session's verification key, imported once. */
interface SessionKey {
  kid: string;
  key: CryptoKey;
  resolve: KeyResolver;
}

/**
 * A session as this process last wrote it, and the order of it delivered and waiting for its
 * accept. The session state is written through (each change is a committed statement before it is
 * held here); what is held is only a guess of what the database holds, for the conditional writes
 * of the usual case, which compare it with the row under the row lock: when another process (or
 * this one, on another path) changed the session, the write does nothing and the locked path
 * decides on the database's word, so two processes never both win and a stale guess costs one
 * more round trip, never money. Any other path drops the entry.
 */
interface HeldSession {
  row: SessionRow;
  pending?: OrderRow;
}

/** What a decision inside a transaction may leave behind besides its answer: a closed session to report. */
type Outcome<T> = { ok: T } | { error: ObolError; closed: Signed<'merchant.record'> };

/**
 * A merchant knows a transaction only by its trade handle (random per deposit, so the deposits of
 * one shopper cannot be linked here); `transactionId` in the merchant's messages and rows is it.
 */
const transactionIdRe = new RegExp(TRADE_HANDLE_PATTERN);
/** Imported session keys kept per process; older ones are dropped (and re-imported on demand). */
const MAX_CACHED_KEYS = 10_000;
/** Retry a failed report after about 1 s, 2 s, 4 s … at most every 5 minutes (the shared back-off, with jitter). */
const RECORD_BACKOFF = { baseMs: 1000, capMs: 300_000 };
const SWEEP_BATCH = 500;
/** Statements of each kind in flight before concurrent writes are grouped, and the group's size. */
const GROUP_COMMIT = { maxInFlight: 2, maxGroup: 64 };
/** Back-off of a session whose timer close failed: 10 s, doubling, at most an hour. */
const SWEEP_BACKOFF = { baseMs: 10_000, capMs: 3_600_000 };
/** A list salt is 16 to 48 random bytes (the wallet picks it per transaction). */
const SALT_MIN_BYTES = 16;
const SALT_MAX_BYTES = 48;

const noLog: MerchantLogger = { info() {}, warn() {}, error() {} };

/**
 * How every transaction of the agent runs. Each one touches a single trading session, and every
 * one that decides anything about money (order, accept, close) first takes that session's row
 * lock (`SELECT … FOR UPDATE`, see `lockSession`) and reads the session only after it holds it.
 * So decisions about one session run one after the other, and READ COMMITTED is enough for the
 * money rules: each statement sees what the previous holder of the lock committed, and the
 * conditional UPDATEs re-check their WHERE against the latest row. SERIALIZABLE would add nothing
 * for the domain but take predicate locks on whole pages and (for small tables) whole relations,
 * making purchases in unrelated sessions abort each other: about 1% of them ran out of retries on
 * PostgreSQL with eight shoppers at once (issue 9). Row locks are plain SQL that CockroachDB and
 * YugabyteDB run too (no advisory locks); an engine that runs these transactions serializably
 * anyway still gets the retries of `Db.transaction`.
 *
 * Lock order, to leave no room for a deadlock: the session row first, then its order and record rows.
 */
const PER_SESSION = { isolation: 'read committed' } as const satisfies TransactionOptions;

// ── the agent ────────────────────────────────────────────────────────────────────────────────

export class MerchantAgent {
  readonly merchantId: string;
  readonly currency: string;
  private readonly db: Db;
  private readonly clock: Clock;
  private readonly crypto: WebCrypto;
  private readonly log: MerchantLogger;
  private readonly sealKeys: SealKeys;
  /** The prepared catalogue (FIG 4): products encrypted and signed once, in the merchant's database. */
  readonly catalogue: ProductCatalogue;
  /** The `Idempotency-Key`s of the shop's administration calls, in the merchant's database. */
  readonly adminIdempotency: IdempotencyKeys;
  private readonly origins: ReadonlySet<string>;
  private readonly recordUrl: string;
  private readonly sessionKeys = new Map<string, SessionKey>();
  /**
   * Open sessions as this process's own last write left them (see HeldSession): an order or an
   * accept judged against them needs no read first. Never trusted on its own — every write made
   * on it re-checks, in the same statement, that the row is still what was judged.
   */
  private readonly held = new BoundedCache<string, HeldSession>(MAX_CACHED_KEYS);
  /** The usual-case writes of concurrent purchases, grouped into one statement while the database is busy. */
  private readonly orderWrites = new GroupWriter<unknown[]>((rows) => this.writeOrders(rows), GROUP_COMMIT);
  private readonly acceptWrites = new GroupWriter<unknown[]>((rows) => this.writeAccepts(rows), GROUP_COMMIT);
  private readonly k1Keys = new BoundedCache<string, Promise<CryptoKey>>(MAX_CACHED_KEYS);
  private readonly inflight = new Map<string, Promise<boolean>>();
  /**
   * Records this process has just committed and is sending now: their delivery need not read
   * them back (the outbox's claim still decides whether they are sent at all). Held only while
   * their first send is under way.
   */
  private readonly justClosed = new Map<string, Pick<RecordRow, 'msg_id' | 'transaction_id' | 'record' | 'sent_at'>>();
  /** Merchant records leave through the one outbox, retried with the one back-off. */
  private readonly outbox: OutboxDispatcher;
  private readonly background = new Set<Promise<unknown>>();

  private constructor(
    private readonly config: MerchantConfig,
    private readonly operatorCert: Cert,
    private readonly operatorKid: string,
    private readonly operatorKey: CryptoKey,
    private readonly http: HttpPost,
    private readonly ownHttp: UndiciPost | undefined,
  ) {
    this.merchantId = config.merchantId;
    this.currency = config.currency;
    this.db = config.db;
    this.clock = config.clock;
    this.crypto = config.crypto ?? serverCrypto;
    this.log = config.log ?? noLog;
    this.sealKeys = config.sealKeys;
    this.catalogue = new ProductCatalogue(config.db, config.key, config.currency, config.clock, this.crypto, config.sealKeys);
    this.adminIdempotency = new IdempotencyKeys(config.db, config.clock);
    this.origins = new Set(config.origins);
    this.recordUrl = `${config.operatorUrl.replace(/\/+$/, '')}${OperatorPaths.merchantRecord}`;
    this.outbox = new OutboxDispatcher({
      db: config.db,
      clock: config.clock,
      topics: new Map([[RECORD_TOPIC, (entry) => this.deliverRecord(entry.key)]]),
      // The acquirer's final word (a 4xx that sending again cannot change) ends the entry, logged.
      isFinal: isFinalRefusal,
      backoff: RECORD_BACKOFF,
      // this.log is read at each call; the lines name the transaction.
      logger: { info: (o, m) => this.log.info(o, m), warn: (o, m) => this.log.warn(o, m), error: (o, m) => this.log.error(o, m) },
      logContext: (entry) => ({ transactionId: (entry.payload as { transactionId?: string }).transactionId }),
    });
  }

  /**
   * Check the configuration, migrate the database and import the operator's key. Refuses to start
   * when the merchant certificate is not this key's, not this merchant's, not issued by this
   * operator, or does not name every configured origin.
   */
  static async open(config: MerchantConfig): Promise<MerchantAgent> {
    const crypto = config.crypto ?? serverCrypto;
    const now = config.clock.now();
    parseAmount(`${config.currency}:0`); // an unknown currency stops here
    const operatorCert = typeof config.operatorCert === 'string' ? parseCert(config.operatorCert) : config.operatorCert;
    const op = describeCert(operatorCert);
    if (op.kind !== 'operator' || op.subjectId !== config.operatorId) {
      throw new ObolError('CERT_WRONG_KIND', `operatorCert must be the certificate of operator ${config.operatorId}`);
    }
    const merchant: CertDescription = await verifyChain(
      config.merchantCert,
      { trustedIssuers: [operatorCert] },
      { now, expectKind: 'merchant' },
      crypto,
    );
    if (merchant.merchantId !== config.merchantId) {
      throw new ObolError('MERCHANT_NOT_TRUSTED', `the merchant certificate names ${merchant.merchantId}, not ${config.merchantId}`);
    }
    if (merchant.publicKeySpki !== config.key.publicKeySpki) {
      throw new ObolError('MERCHANT_NOT_TRUSTED', 'the merchant certificate is not for the configured key');
    }
    const missing = config.origins.filter((o) => !merchant.origins?.includes(o));
    if (config.origins.length === 0 || missing.length > 0) {
      throw new ObolError('MERCHANT_NOT_TRUSTED', `the merchant certificate does not name the origin(s) ${missing.join(', ') || '(none configured)'}`);
    }
    await migrateMerchantDb(config.db);
    // Keys of rows from before sealing (or sealed under a rotated-out key) are sealed under the current key before we serve.
    await resealColumn(config.db, config.sealKeys, 'merchant_sessions', 'transaction_id', 'k1_sealed', SESSION_K1_COLUMN);
    await resealColumn(config.db, config.sealKeys, 'merchant_products', 'ciphertext_hash', 'k2_sealed', K2_COLUMN);
    const { kid: operatorKid, key: operatorKey } = await operatorMessageKey(config.operatorSigningCert, operatorCert, now, crypto);
    const own = config.http ? undefined : undiciPost();
    const agent = new MerchantAgent(config, operatorCert, operatorKid, operatorKey, config.http ?? own!.post, own);
    try {
      // Products prepared under an earlier key of this merchant carry its signatures: signed
      // again first, so the shop sells what it has, whatever key it now holds.
      const resigned = await agent.catalogue.signAgainWithCurrentKey();
      if (resigned > 0) agent.log.info({ versions: resigned }, 'product versions signed again with the merchant key now in use');
      // The shop's own product list goes through the same preparation as `addProduct` (once: a
      // product already prepared as it is stays as it is).
      if (config.catalogue) await agent.catalogue.sync(await config.catalogue.list());
    } catch (e) {
      await own?.close();
      throw e;
    }
    return agent;
  }

  /** What a wallet needs to open a deposit here. */
  publicInfo(): MerchantPublicInfoBody {
    return {
      merchantId: this.config.merchantId,
      name: this.config.name,
      operatorId: this.config.operatorId,
      operatorUrl: this.config.operatorUrl,
      currency: this.config.currency,
      origins: [...this.config.origins],
    };
  }

  /** The catalogue as wallets and pages see it: each product with its signed description. */
  async products(): Promise<ProductListing[]> {
    return (await this.catalogue.list()).map(listingOf);
  }

  /** The shop's own sales, from its database (sales.ts): for its administration only. */
  async sales(options: { days?: number } = {}): Promise<SalesReport> {
    return salesReport(this.db, this.currency, options);
  }

  /**
   * Refund (part of) a purchase (issue 14). While the trading session is still open, a refund line
   * before clearing (`refundLine`): nothing moves now, the record this merchant reports is lowered
   * by it and the wallet learns it. Once the session is closed its record is signed and on its way,
   * so from then on a refund goes through the shop's operator, after clearing: signed with the
   * merchant's key, sent to the acquirer, its signed answer checked. `refundId` makes a retry the
   * same refund (the acquirer moves the money once per id); the acquirer refuses a refund of a
   * transaction not cleared (yet: a closed session waiting for clearing), not ours, or more than is
   * left of what it paid.
   */
  async refund(request: { transactionId: string; amount: string; refundId?: string; n?: number }): Promise<RefundResponse> {
    const amount = parseAmount(request.amount);
    if (amount.currency !== this.currency) throw new ObolError('CURRENCY_MISMATCH', `this shop is paid in ${this.currency}`);
    if (!transactionIdRe.test(request.transactionId)) throw new ObolError('MALFORMED', 'not a trade handle');
    const refundId = request.refundId ?? randomId();
    const before = await this.refundLine(request.transactionId, amount, refundId, request.n);
    if (before) return before;
    const body: MessageBody<'merchant.refund'> = {
      refundId,
      transactionId: request.transactionId,
      merchantId: this.merchantId,
      amount: formatAmount(amount),
      time: this.clock.now(),
    };
    const signed = await signMessage('merchant.refund', body, this.config.key.signer);
    const answer = await this.http(`${this.config.operatorUrl.replace(/\/+$/, '')}${OperatorPaths.merchantRefund}`, signed);
    const refund = await verifyMessage(answer, 'acquirer.refund', this.operatorResolver, this.crypto);
    const r = refund.body;
    if (r.refundId !== body.refundId || r.transactionId !== body.transactionId || r.amount !== body.amount) {
      throw new ObolError('CONFLICT', `the operator answered for refund ${r.refundId} of ${r.amount}, not ${body.refundId} of ${body.amount}`);
    }
    this.log.info({ transactionId: r.transactionId, refundId: r.refundId, n: r.n, amount: r.amount }, 'refund booked by the operator');
    return { refundId: r.refundId, transactionId: r.transactionId, n: r.n, amount: r.amount, refundedTotal: r.refundedTotal, refund };
  }

  /**
   * A refund before clearing: under the session's lock, while it is open, a signed refund line for
   * purchase n (or the latest purchase with room for the amount), checked by the one rule both
   * sides apply (`recordTotal`: never more than what purchase n cost, each refundId once). A
   * refundId seen before answers its first line again (a retry changes nothing); the same id for
   * another refund is a CONFLICT. Undefined when the session is not open here (or not ours):
   * the caller refunds after clearing.
   */
  private async refundLine(transactionId: string, amount: Amount, refundId: string, n: number | undefined): Promise<RefundResponse | undefined> {
    const now = this.clock.now();
    return this.db.transaction(async (tx) => {
      // A refundId seen before answers its line again — also once the session has closed, so a
      // retry is never turned into a second refund after clearing.
      const sameAsBefore = async (): Promise<RefundResponse | undefined> => {
        const [prior] = await tx.query<{ line_msg: Signed<'merchant.refundLine'> }>('SELECT line_msg FROM merchant_refund_lines WHERE refund_id = $1', [refundId]);
        if (!prior) return undefined;
        const b = prior.line_msg.body;
        if (b.transactionId !== transactionId || b.amount !== formatAmount(amount) || (n !== undefined && b.n !== n)) {
          throw new ObolError('CONFLICT', `refund ${refundId} was already used for another refund`);
        }
        return this.lineResponse(prior.line_msg, await this.refundLinesOf(tx, transactionId));
      };
      const before = await sameAsBefore();
      if (before) return before;
      const [exists] = await tx.query<{ state: SessionState }>('SELECT state FROM merchant_sessions WHERE transaction_id = $1', [transactionId]);
      if (exists?.state !== 'open') return undefined;
      const s = await this.lockSession(tx, transactionId);
      if (s.state !== 'open') return undefined;
      // Again under the lock: two copies of one refund at once are decided one after the other.
      const raced = await sameAsBefore();
      if (raced) return raced;
      const purchases = await this.acceptedLines(tx, transactionId);
      const lines = await this.refundLinesOf(tx, transactionId);
      const known = lines.map((l) => l.body);
      const refundedOn = (k: number) => known.filter((l) => l.n === k).reduce((t, l) => t + parseAmount(l.amount).value, 0n);
      const target =
        n ?? [...purchases].reverse().find((p) => parseAmount(p.price).value - refundedOn(p.n) >= amount.value)?.n ?? purchases[purchases.length - 1]?.n;
      if (target === undefined) throw new ObolError('CONFLICT', `transaction ${transactionId} has no accepted purchase to refund`);
      const body: MessageBody<'merchant.refundLine'> = { refundId, transactionId, n: target, amount: formatAmount(amount), time: now };
      // The one rule (purchaseList.ts): throws when the line would refund more than purchase n cost.
      recordTotal(this.fmt(s.spent), purchases, [...known, body]);
      const line = await signMessage('merchant.refundLine', body, this.config.key.signer);
      await tx.query(
        'INSERT INTO merchant_refund_lines (refund_id, transaction_id, n, amount, line_msg, created_at) VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)',
        [refundId, transactionId, target, amount.value, JSON.stringify(line), now],
      );
      this.log.info({ transactionId, refundId, n: target, amount: body.amount }, 'refund line before clearing');
      return this.lineResponse(line, [...lines, line]);
    }, PER_SESSION);
  }

  private lineResponse(line: Signed<'merchant.refundLine'>, all: readonly Signed<'merchant.refundLine'>[]): RefundResponse {
    const b = line.body;
    const refunded = all.reduce((t, l) => t + parseAmount(l.body.amount).value, 0n);
    return { refundId: b.refundId, transactionId: b.transactionId, n: b.n, amount: b.amount, refundedTotal: this.fmt(refunded), line };
  }

  /** The signed refund lines of a session, in the order they were made. */
  private async refundLinesOf(q: Queryable, transactionId: string): Promise<Signed<'merchant.refundLine'>[]> {
    const rows = await q.query<{ line_msg: Signed<'merchant.refundLine'> }>(
      'SELECT line_msg FROM merchant_refund_lines WHERE transaction_id = $1 ORDER BY created_at, refund_id',
      [transactionId],
    );
    return rows.map((r) => r.line_msg);
  }

  /** The accepted purchases of a session, in order: what its record's list hash covers. */
  private async acceptedLines(q: Queryable, transactionId: string): Promise<PurchaseLine[]> {
    const rows = await q.query<{ n: number; product_id: string; price: string }>(
      'SELECT n, product_id, price FROM merchant_orders WHERE transaction_id = $1 AND accept_id IS NOT NULL ORDER BY n',
      [transactionId],
    );
    return rows.map((l) => ({ n: l.n, productId: l.product_id, price: l.price }));
  }

  /** One product's signed description: what a wallet checks before it orders (UNKNOWN_PRODUCT if none). */
  async description(productId: string): Promise<Signed<'merchant.description'>> {
    const ready = await this.catalogue.currentReady(productId);
    if (!ready) throw new ObolError('UNKNOWN_PRODUCT', `there is no product ${productId}`);
    return ready.product.signedDescription;
  }

  /**
   * FIG 4: adds a product to sell. It is checked (a catalogue error, and nothing stored, on bad
   * input), encrypted once with its own K2 (AES-256-GCM) and signed once (`merchant.product` over
   * the ciphertext's hash with the id, `merchant.description` with the plaintext's hash). The same
   * product again changes nothing; a different one under the same id needs `replace`.
   */
  addProduct(input: ProductInput, opts: AddProductOptions = {}): Promise<ProductView> {
    return this.catalogue.add(input, opts);
  }

  // ── step 4 → 5: the acquirer's information message opens a trading session ──────────────

  async receiveInfo(message: unknown): Promise<Signed<'merchant.ack'>> {
    const info = await verifyMessage(message, 'acquirer.info', this.operatorResolver, this.crypto);
    const b = info.body;
    try {
      return await this.openNewSession(info);
    } catch (e) {
      // A copy of an information message already acknowledged gets the same acknowledgement even
      // when a check would now refuse it (its session has expired since, say). Looked up only
      // here, so a new session costs its one INSERT and no prior SELECT.
      const [prior] = await this.db.query<{ ack: Signed<'merchant.ack'> }>('SELECT ack FROM merchant_sessions WHERE info_msg_id = $1', [b.msgId]);
      if (prior) return prior.ack;
      throw e;
    }
  }

  private async openNewSession(info: Signed<'acquirer.info'>): Promise<Signed<'merchant.ack'>> {
    const b = info.body;
    if (b.merchantId !== this.merchantId) throw new ObolError('UNKNOWN_MERCHANT', `this is merchant ${this.merchantId}, not ${b.merchantId}`);
    const now = this.clock.now();
    const temp = await verifyChain(b.tempCert, { trustedIssuers: [this.operatorCert] }, { now, expectKind: 'temporary' }, this.crypto);
    if (temp.transactionId !== b.transactionId) {
      throw new ObolError('MALFORMED', `the temporary certificate is for transaction ${temp.transactionId}, not ${b.transactionId}`);
    }
    const deposit = this.ourAmount(b.deposit, 'deposit');
    if (b.expiresAt <= now) throw new ObolError('SESSION_EXPIRED', `transaction ${b.transactionId} expired before it opened`);
    // The session key is only good while its certificate is.
    const expiresAt = Math.min(b.expiresAt, temp.notAfter);
    const sessionKey = await this.importSessionKey(temp.publicKeySpki);
    const ack = await signMessage('merchant.ack', { msgId: randomId(16, this.crypto), transactionId: b.transactionId, infoMsgId: b.msgId, time: now }, this.config.key.signer);

    // K1 is kept sealed (bound to this session) and only there: the information message is stored
    // without it (only its temporary certificate is read back, for dispute evidence).
    const k1Sealed = await this.sealKeys.seal(b.k1, { column: SESSION_K1_COLUMN, rowId: b.transactionId });
    const { k1: _k1, ...infoBody } = b;
    const storedInfo = { ...info, body: infoBody };
    // One statement, committed on its own (no BEGIN and COMMIT round trips): an insert racing a
    // copy of the same info waits for it, does nothing, and the SELECT after it (a new snapshot,
    // as under READ COMMITTED) sees the winner's ack.
    const inserted = await this.db.query(
      `INSERT INTO merchant_sessions (transaction_id, info_msg_id, info, ack, pseudonym, currency, deposit, session_key,
                                      session_kid, k1_sealed, expires_at, opened_at)
       VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT DO NOTHING RETURNING transaction_id`,
      [b.transactionId, b.msgId, JSON.stringify(storedInfo), JSON.stringify(ack), b.pseudonym, this.currency, deposit.value,
        temp.publicKeySpki, sessionKey.kid, k1Sealed, expiresAt, now],
    );
    let stored = ack;
    if (inserted.length === 0) {
      const [same] = await this.db.query<{ ack: Signed<'merchant.ack'> }>('SELECT ack FROM merchant_sessions WHERE info_msg_id = $1', [b.msgId]);
      if (!same) throw new ObolError('CONFLICT', `transaction ${b.transactionId} was already opened by another information message`);
      stored = same.ack;
    }
    if (stored === ack) {
      this.cacheKey(b.transactionId, sessionKey);
      this.log.info({ transactionId: b.transactionId, deposit: b.deposit, expiresAt }, 'trading session opened');
    }
    return stored;
  }

  // ── purchases: order → delivery ──────────────────────────────────────────────────────────

  async order(request: unknown): Promise<OrderResponseBody> {
    checkSchema(OrderRequest, request, 'order request');
    const transactionId = transactionIdOf(request.order.body);
    const key = await this.sessionKey(transactionId);
    const order = await verifyMessage(request.order, 'wallet.order', key.resolve, this.crypto);
    const o = order.body;
    if (!this.origins.has(o.origin)) {
      throw new ObolError('UNKNOWN_MERCHANT', `merchant ${this.merchantId} does not sell on ${o.origin}`);
    }
    const price = this.ourAmount(o.price, 'price');
    // The version this process last found current (no statement); a refusal is decided only on
    // what the database says.
    let ready = await this.catalogue.lastKnownCurrent(o.productId);
    let fresh = false;
    if (!ready || ready.product.price !== o.price) {
      ready = await this.catalogue.currentReady(o.productId);
      fresh = true;
    }
    let product = offered(ready, o);
    checkSalt(o.listSalt);
    const now = this.clock.now();
    const orderRowOf = ({ product: p }: ReadyVersion) => [transactionId, o.n, o.productId, o.price, price.value, JSON.stringify(order), p.ciphertextHash, p.descriptionHash, now];

    // The usual case in one statement, no transaction: the session as this process last left it
    // (or as just read) admits the order (admitOrder, the one rule), and the order is written
    // only if the session is still that session and the version still the current one when the
    // write locks the session's row. Anything else (a refusal, a session or product that changed,
    // a session that must close) is decided by the locked path below, on what the database says.
    const seen = this.held.get(transactionId)?.row ?? (await this.readSession(transactionId));
    if (seen && this.admits(() => admitOrder(requireOpen(seen), o, price, now)) && (await this.orderIfUnchanged(seen, o.listSalt, orderRowOf(product), product.product))) {
      this.held.set(transactionId, {
        row: { ...seen, list_salt: o.listSalt },
        pending: { n: o.n, product_id: o.productId, price: o.price, amount: price.value, content_hash: product.product.ciphertextHash, description_hash: product.product.descriptionHash, accept_id: null, accept_msg: null, cumulative: null, key_msg: null },
      });
      return this.orderResponse(transactionId, o, product);
    }
    this.held.delete(transactionId);
    if (!fresh) product = offered(await this.catalogue.currentReady(o.productId), o);
    const orderRow = orderRowOf(product);

    const outcome = await this.db.transaction<Outcome<null>>(async (tx) => {
      const s = await this.openSession(tx, transactionId);
      const closing = admitOrder(s, o, price, now);
      if (closing) return this.closeWith(tx, s, closing.reason, now, closing.error);
      // content_hash: SHA-256 of what is delivered — the ciphertext, prepared once for everyone.
      await tx.query(`INSERT INTO merchant_orders ${ORDER_INSERT}`, orderRow);
      if (s.list_salt === null) {
        await tx.query('UPDATE merchant_sessions SET list_salt = $2 WHERE transaction_id = $1', [transactionId, o.listSalt]);
      }
      return { ok: null };
    }, PER_SESSION);
    this.settle(outcome);
    return this.orderResponse(transactionId, o, product);
  }

  /** FIG 4: the signed encrypted product with its id, and the signed description — all made once,
   * when the product was added; nothing is encrypted or signed for this order. */
  private orderResponse(transactionId: string, o: MessageBody<'wallet.order'>, ready: ReadyVersion): OrderResponseBody {
    return {
      transactionId,
      n: o.n,
      productId: o.productId,
      price: o.price,
      product: ready.product.signedProduct,
      description: ready.product.signedDescription,
      ciphertext: ready.ciphertext,
    };
  }

  /** Whether a check passes without a word (no refusal, nothing to close): only then the fast path. */
  private admits(check: () => unknown): boolean {
    try {
      return check() === undefined;
    } catch {
      return false;
    }
  }

  /**
   * Writes the order (and the session's listSalt, at its first order) in one statement, only if
   * the session row, locked by the statement, is still the one the caller read and judged: open,
   * with the same count, spent and listSalt; and the product version delivered is still current
   * with the same signatures (it may come from the process's memory). False when it changed (the caller decides again,
   * under the lock); a conflict the engine asks to retry is also left to that path.
   */
  private async orderIfUnchanged(seen: SessionRow, listSalt: string, orderRow: unknown[], product: StoredProduct): Promise<boolean> {
    try {
      return await this.orderWrites.submit(seen.transaction_id, [
        ...orderRow,
        seen.count,
        seen.spent,
        seen.list_salt,
        listSalt,
        product.signedProduct.sig,
        product.signedDescription.sig,
      ]);
    } catch (e) {
      if (isRetryable(e)) return false;
      throw e;
    }
  }

  /** The conditional order writes of `orderIfUnchanged`, one statement for them all (groupCommit.ts). */
  private async writeOrders(rows: readonly unknown[][]): Promise<boolean[]> {
    if (rows.length === 1) {
      const [r] = await this.db.query<{ written: boolean }>(
        `WITH s AS (
           SELECT transaction_id FROM merchant_sessions
            WHERE transaction_id = $1 AND state = 'open' AND count = $10::integer AND spent = $11::bigint
              AND list_salt IS NOT DISTINCT FROM $12::text
              AND ${currentVersionCheck('$7::text', '$14::text', '$15::text')}
            FOR UPDATE),
         salt AS (
           UPDATE merchant_sessions SET list_salt = $13::text WHERE transaction_id = $1 AND list_salt IS NULL AND EXISTS (SELECT 1 FROM s)),
         ins AS (
           INSERT INTO merchant_orders ${orderInsertIf('EXISTS (SELECT 1 FROM s)')}
           RETURNING n)
         SELECT EXISTS (SELECT 1 FROM ins) AS written`,
        rows[0]!,
      );
      return [r?.written === true];
    }
    // The same conditions row by row; the sessions locked in one order (no deadlock between groups).
    const written = await this.db.query<{ transaction_id: string }>(
      `WITH i AS (
         SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[],
                              $10::integer[], $11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[])
           AS i(transaction_id, n, product_id, price, amount, order_msg, content_hash, description_hash, ordered_at,
                seen_count, seen_spent, seen_salt, new_salt, product_sig, description_sig)),
       s AS (
         SELECT m.transaction_id FROM merchant_sessions m JOIN i ON i.transaction_id = m.transaction_id
          WHERE m.state = 'open' AND m.count = i.seen_count AND m.spent = i.seen_spent
            AND m.list_salt IS NOT DISTINCT FROM i.seen_salt
            AND ${currentVersionCheck('i.content_hash', 'i.product_sig', 'i.description_sig')}
          ORDER BY m.transaction_id
          FOR UPDATE OF m),
       salt AS (
         UPDATE merchant_sessions m SET list_salt = i.new_salt FROM i
          WHERE m.transaction_id = i.transaction_id AND m.list_salt IS NULL AND m.transaction_id IN (SELECT transaction_id FROM s)),
       ins AS (
         INSERT INTO merchant_orders (${ORDER_COLUMNS})
         SELECT transaction_id, n, product_id, price, amount, order_msg::jsonb, content_hash, description_hash, ordered_at FROM i
          WHERE transaction_id IN (SELECT transaction_id FROM s)
         ${ORDER_CONFLICT}
         RETURNING transaction_id)
       SELECT transaction_id FROM ins`,
      columnsOf(rows),
    );
    const ok = new Set(written.map((r) => r.transaction_id));
    return rows.map((r) => ok.has(r[0] as string));
  }

  // ── purchases: accept → charge ───────────────────────────────────────────────────────────

  async accept(request: unknown): Promise<AcceptResponseBody> {
    checkSchema(AcceptRequest, request, 'accept request');
    const transactionId = transactionIdOf(request.accept.body);
    const key = await this.sessionKey(transactionId);
    const accept = await verifyMessage(request.accept, 'wallet.accept', key.resolve, this.crypto);
    const a = accept.body;
    const cumulative = this.ourAmount(a.cumulative, 'cumulative');
    const now = this.clock.now();
    const acceptJson = JSON.stringify(accept);

    // The usual case without a transaction: the session and its orders as one read sees them
    // admit the accept (judgeAccept, the one rule), and it is recorded in one statement only if
    // the session and the order are still what was judged when that statement locks the session.
    // Anything else (a replay, a refusal, a change in between) is decided by the locked path below.
    const fast = await this.acceptAtOnce(transactionId, accept, cumulative, now, acceptJson);
    if (fast) return fast;
    this.held.delete(transactionId);

    const outcome = await this.db.transaction<Outcome<AcceptResponseBody>>(async (tx) => {
      // The lock first, then the look for a replay: two copies of one accept arriving at once are
      // decided one after the other, and the second finds the first's answer.
      const s = await this.lockSession(tx, transactionId);
      // One read for both questions: was this accept seen before (its row), and which delivered
      // order waits for it (the row of purchase n not yet accepted).
      const rows = await tx.query<OrderRow & { accept_id: string | null }>(
        `SELECT ${ACCEPT_ORDER_COLUMNS} FROM merchant_orders WHERE transaction_id = $1 AND (accept_id = $2 OR (n = $3 AND accept_id IS NULL))`,
        [transactionId, a.acceptId, a.n],
      );
      const verdict = await this.judgeAccept(s, rows, a, cumulative, now);
      if ('replay' in verdict) {
        // The same key as the first time: a wallet whose answer was lost asks again with this accept.
        const prior = verdict.replay;
        return { ok: this.acceptResponse(transactionId, prior.n, prior.cumulative ?? 0n, s.deposit, prior.key_msg!) };
      }
      if ('close' in verdict) return this.closeWith(tx, s, verdict.close.reason, now, verdict.close.error);
      const keyMsg = await this.keyMessage(tx, s, a, verdict.pending);
      // The order and the session in one statement (one round trip, same transaction).
      await tx.query(
        `WITH accepted AS (
           UPDATE merchant_orders SET accept_id = $3, accept_msg = $4::text::jsonb, cumulative = $5, accepted_at = $6, key_msg = $7::text::jsonb
            WHERE transaction_id = $1 AND n = $2 AND accept_id IS NULL
           RETURNING n)
         UPDATE merchant_sessions SET spent = $5, count = count + 1, latest_accept = $4::text::jsonb
          WHERE transaction_id = $1 AND EXISTS (SELECT 1 FROM accepted)`,
        [transactionId, a.n, a.acceptId, acceptJson, verdict.expected, now, JSON.stringify(keyMsg)],
      );
      return { ok: this.acceptResponse(transactionId, a.n, verdict.expected, s.deposit, keyMsg) };
    }, PER_SESSION);
    return this.settle(outcome);
  }

  /**
   * The accept recorded without a transaction when the session and its waiting order — as this
   * process last wrote them (HeldSession), or read together in one snapshot — admit it and are
   * unchanged when the write locks the session; undefined otherwise (the caller takes the locked path, which decides anew).
   */
  private async acceptAtOnce(
    transactionId: string,
    accept: Signed<'wallet.accept'>,
    cumulative: Amount,
    now: number,
    acceptJson: string,
  ): Promise<AcceptResponseBody | undefined> {
    const a = accept.body;
    // What this process wrote last: the session and the order delivered for purchase n. Else one read.
    const held = this.held.get(transactionId);
    const [s, rows] = held?.pending?.n === a.n ? [held.row, [held.pending]] : await this.sessionAndOrders(transactionId, a);
    if (!s) return undefined;
    let verdict: Awaited<ReturnType<MerchantAgent['judgeAccept']>>;
    try {
      verdict = await this.judgeAccept(s, rows, a, cumulative, now);
    } catch {
      return undefined;
    }
    if (!('pending' in verdict)) return undefined;
    const p = verdict.pending;
    const keyMsg = await this.keyMessage(this.db, s, a, p);
    try {
      const written = await this.acceptWrites.submit(transactionId, [
        transactionId, a.n, a.acceptId, acceptJson, verdict.expected, now, JSON.stringify(keyMsg), s.count, s.spent, p.product_id, p.price, p.content_hash, p.description_hash,
        // The sealed K1 the key was wrapped with: the row must still hold it (a sealed value an
        // insider moved into the row is then met by the locked path, which opens what the row holds).
        s.k1_sealed,
      ]);
      if (!written) return undefined;
    } catch (e) {
      // An acceptId this session used before (the unique key): the locked path finds it and says so.
      if (isRetryable(e) || sqlState(e) === '23505') return undefined;
      throw e;
    }
    // Committed: held as written, for the next order of this session.
    this.held.set(transactionId, { row: { ...s, spent: verdict.expected, count: s.count + 1, latest_accept: accept } });
    return this.acceptResponse(transactionId, a.n, verdict.expected, s.deposit, keyMsg);
  }

  /** The conditional accept writes of `acceptAtOnce`, one statement for them all (groupCommit.ts). */
  private async writeAccepts(rows: readonly unknown[][]): Promise<boolean[]> {
    if (rows.length === 1) {
      const [r] = await this.db.query<{ written: boolean }>(
        `WITH s AS (
           SELECT transaction_id FROM merchant_sessions
            WHERE transaction_id = $1 AND state = 'open' AND count = $8::integer AND spent = $9::bigint AND k1_sealed = $14::text
            FOR UPDATE),
         accepted AS (
           UPDATE merchant_orders SET accept_id = $3, accept_msg = $4::text::jsonb, cumulative = $5, accepted_at = $6, key_msg = $7::text::jsonb
            WHERE transaction_id = $1 AND n = $2 AND accept_id IS NULL AND EXISTS (SELECT 1 FROM s)
              AND product_id = $10 AND price = $11 AND content_hash = $12 AND description_hash IS NOT DISTINCT FROM $13::text
           RETURNING n),
         session AS (
           UPDATE merchant_sessions SET spent = $5, count = count + 1, latest_accept = $4::text::jsonb
            WHERE transaction_id = $1 AND EXISTS (SELECT 1 FROM accepted)
           RETURNING transaction_id)
         SELECT EXISTS (SELECT 1 FROM session) AS written`,
        rows[0]!,
      );
      return [r?.written === true];
    }
    // The same conditions row by row; the sessions locked in one order (no deadlock between groups).
    const written = await this.db.query<{ transaction_id: string }>(
      `WITH i AS (
         SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
                              $8::integer[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
           AS i(transaction_id, n, accept_id, accept_msg, cumulative, accepted_at, key_msg, seen_count, seen_spent,
                product_id, price, content_hash, description_hash, seen_k1)),
       s AS (
         SELECT m.transaction_id FROM merchant_sessions m JOIN i ON i.transaction_id = m.transaction_id
          WHERE m.state = 'open' AND m.count = i.seen_count AND m.spent = i.seen_spent AND m.k1_sealed = i.seen_k1
          ORDER BY m.transaction_id
          FOR UPDATE OF m),
       accepted AS (
         UPDATE merchant_orders o SET accept_id = i.accept_id, accept_msg = i.accept_msg::jsonb, cumulative = i.cumulative,
                accepted_at = i.accepted_at, key_msg = i.key_msg::jsonb
           FROM i
          WHERE o.transaction_id = i.transaction_id AND o.n = i.n AND o.accept_id IS NULL AND o.transaction_id IN (SELECT transaction_id FROM s)
            AND o.product_id = i.product_id AND o.price = i.price AND o.content_hash = i.content_hash
            AND o.description_hash IS NOT DISTINCT FROM i.description_hash
         RETURNING o.transaction_id, i.cumulative, i.accept_msg),
       session AS (
         UPDATE merchant_sessions m SET spent = a.cumulative, count = m.count + 1, latest_accept = a.accept_msg::jsonb
           FROM accepted a WHERE m.transaction_id = a.transaction_id
         RETURNING m.transaction_id)
       SELECT transaction_id FROM session`,
      columnsOf(rows),
    );
    const ok = new Set(written.map((r) => r.transaction_id));
    return rows.map((r) => ok.has(r[0] as string));
  }

  /**
   * The session and the rows of its orders an accept is judged on (the one with this acceptId, the
   * one of purchase n not yet accepted), in one read: one consistent snapshot, no lock.
   */
  private async sessionAndOrders(transactionId: string, a: MessageBody<'wallet.accept'>): Promise<[SessionRow | undefined, OrderRow[]]> {
    const seen = await this.db.query<SessionRow & { [K in keyof OrderRow as `o_${K}`]: OrderRow[K] | null }>(
      `SELECT ${SESSION_COLUMNS.replace(/(\w+)/g, 's.$1')}, ${ACCEPT_ORDER_COLUMNS.replace(/(\w+)/g, 'o.$1 AS o_$1')}
         FROM merchant_sessions s
         LEFT JOIN merchant_orders o ON o.transaction_id = s.transaction_id AND (o.accept_id = $2 OR (o.n = $3 AND o.accept_id IS NULL))
        WHERE s.transaction_id = $1`,
      [transactionId, a.acceptId, a.n],
    );
    const rows: OrderRow[] = seen
      .filter((r) => r.o_n !== null)
      .map((r) => ({
        n: r.o_n!,
        product_id: r.o_product_id!,
        price: r.o_price!,
        amount: r.o_amount!,
        content_hash: r.o_content_hash!,
        description_hash: r.o_description_hash,
        accept_id: r.o_accept_id,
        accept_msg: r.o_accept_msg,
        cumulative: r.o_cumulative,
        key_msg: r.o_key_msg,
      }));
    return [seen[0], rows];
  }

  /**
   * The one rule of an accept, on the session and the rows of its orders that matter (the one with
   * this acceptId, the one of purchase n not yet accepted): a replay of an accept recorded before,
   * a session to close, or the order it pays and the new spent total. A refusal is thrown.
   */
  private async judgeAccept(
    s: SessionRow,
    rows: readonly OrderRow[],
    a: MessageBody<'wallet.accept'>,
    cumulative: Amount,
    now: number,
  ): Promise<{ replay: OrderRow } | { close: { reason: CloseReason; error: ObolError } } | { pending: OrderRow; expected: bigint }> {
    // A replay is answered as the first time, whatever happened to the session since.
    const prior = rows.find((r) => r.accept_id === a.acceptId);
    if (prior) {
      if (canonicalJson(prior.accept_msg?.body) !== canonicalJson(a)) {
        // Not REPLAYED: a wallet reads REPLAYED as "the merchant already has this accept".
        throw new ObolError('CONFLICT', `acceptId ${a.acceptId} was already used for another accept`);
      }
      return { replay: prior };
    }
    requireOpen(s);
    if (now >= Number(s.expires_at)) return { close: { reason: 'timer', error: expired(s.transaction_id) } };
    if (a.n <= s.count) throw new ObolError('REPLAYED', `purchase ${a.n} was already accepted with another acceptId`);
    const pending = rows.find((r) => r.accept_id === null);
    if (!pending || a.n !== s.count + 1) {
      throw new ObolError('OUT_OF_SEQUENCE', `there is no delivered order ${a.n} waiting for an accept (next is ${s.count + 1})`);
    }
    // The accept names the purchase only by its salted commitment (what our operator will see as
    // proof); it must commit to exactly the order delivered: product, price, ciphertext, description.
    const committed =
      s.list_salt !== null &&
      pending.description_hash !== null &&
      a.commitment ===
        (await purchaseCommitment(
          s.list_salt,
          { n: a.n, productId: pending.product_id, price: pending.price, receivedHash: pending.content_hash, descriptionHash: pending.description_hash },
          this.crypto,
        ));
    if (!committed) {
      throw new ObolError('PRODUCT_MISMATCH', `the accept commits to something other than order ${a.n} as delivered (${pending.product_id} at ${pending.price})`);
    }
    const expected = s.spent + pending.amount;
    if (cumulative.value < expected) {
      throw new ObolError('AMOUNT_EXCEEDS_SIGNED', `charging ${pending.price} makes ${this.fmt(expected)}, more than the signed cumulative ${a.cumulative}`);
    }
    if (cumulative.value > expected) {
      throw new ObolError('MALFORMED', `the cumulative ${a.cumulative} is not the accepted ${this.fmt(s.spent)} plus ${pending.price}`);
    }
    if (expected > s.deposit) throw new ObolError('DEPOSIT_EXHAUSTED', `${a.cumulative} is more than the deposit`);
    return { pending, expected };
  }

  /**
   * FIG 4, the last message: sign_M([K2]^K1) — K2 of the version delivered, wrapped with the K1
   * the trusted party relayed. The only thing made per purchase; kept for replays.
   */
  private async keyMessage(q: Queryable, s: SessionRow, a: MessageBody<'wallet.accept'>, pending: OrderRow): Promise<Signed<'merchant.key'>> {
    return signMessage(
      'merchant.key',
      {
        transactionId: s.transaction_id,
        n: a.n,
        productId: pending.product_id,
        acceptId: a.acceptId,
        wrappedK2: await wrapImportedProductKey(await this.catalogue.productKey(q, pending.content_hash), await this.k1Of(s), this.crypto),
      },
      this.config.key.signer,
    );
  }

  // ── delivering again what was bought (issue 14) ──────────────────────────────────────────

  /**
   * A purchase delivered again, without a charge: after a reload, in a new tab, after the session
   * was stopped or cleared. The proof is the wallet's `wallet.redeliver`, signed with the session
   * key of the transaction (only that wallet holds it), naming purchase n by the acceptId of the
   * accept this merchant recorded; the answer is what was delivered then — the ciphertext of the
   * version accepted and the very sign_M([K2]^K1) stored with that accept — so nothing is made,
   * and only the holder of that session's K1 can open it. Nothing here touches money or a session's
   * state, so it needs no session lock, and the session may be in any state (the merchant keeps
   * its sessions, orders and keys after clearing).
   *
   * Every refusal before the signature verifies is the same UNAUTHORIZED (unknown transaction,
   * another session's key, a forgery): a stranger learns nothing, not even whether an id exists.
   * Once it verifies: stale or replayed (its msgId is taken once, in the session-read table, which
   * the sweep purges past the window) is UNAUTHORIZED saying so; no such accepted purchase is NO_ACCEPT.
   */
  async redeliver(request: unknown): Promise<RedeliverResponseBody> {
    const denied = () => new ObolError('UNAUTHORIZED', 'a purchase is delivered again only to the wallet that made it (a request signed with its session key)');
    checkSchema(RedeliverRequest, request, 'redelivery request');
    const transactionId = (request.redeliver.body as { transactionId?: unknown }).transactionId;
    if (typeof transactionId !== 'string' || !transactionIdRe.test(transactionId)) throw denied();
    // One lookup whether or not the session exists; a key is imported (or taken from the cache)
    // only when the message names this session's key id.
    const [s] = await this.db.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM merchant_sessions WHERE transaction_id = $1`, [transactionId]);
    let asked: Signed<'wallet.redeliver'>;
    try {
      const kid = s?.session_kid;
      asked = await verifyMessage(request.redeliver, 'wallet.redeliver', async (k) => (kid !== undefined && k === kid ? (await this.keyOf(s!)).key : undefined), this.crypto);
    } catch {
      throw denied();
    }
    if (!s) throw denied();
    const r = asked.body;
    const now = this.clock.now();
    if (Math.abs(now - r.time) > SESSION_READ_WINDOW_MS) {
      throw new ObolError('UNAUTHORIZED', `this redelivery request is not fresh (its time is more than ${SESSION_READ_WINDOW_MS / 1000} s from the merchant's clock): sign a new one`);
    }
    const [o] = await this.db.query<Pick<OrderRow, 'n' | 'product_id' | 'content_hash' | 'key_msg'>>(
      'SELECT n, product_id, content_hash, key_msg FROM merchant_orders WHERE transaction_id = $1 AND n = $2 AND accept_id = $3',
      [transactionId, r.n, r.acceptId],
    );
    if (!o?.key_msg) throw new ObolError('NO_ACCEPT', `this merchant holds no accept ${r.acceptId} for purchase ${r.n} of ${transactionId}: there is nothing to deliver again`);
    // Taken once: the same table as the session reads (same window, same purge), a msgId per session.
    const taken = await this.db.query(
      'INSERT INTO merchant_session_reads (transaction_id, msg_id, read_time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING msg_id',
      [transactionId, r.msgId, r.time],
    );
    if (taken.length === 0) throw new ObolError('UNAUTHORIZED', 'this redelivery request was already used: sign a new one');
    const version = await this.catalogue.version(o.content_hash);
    if (!version) throw new ObolError('INTERNAL', `the product delivered for purchase ${r.n} of ${transactionId} is missing`);
    this.log.info({ transactionId, n: r.n, productId: o.product_id }, 'purchase delivered again');
    return {
      transactionId,
      n: o.n,
      productId: o.product_id,
      ciphertext: Buffer.from(version.ciphertext).toString('base64url'),
      key: o.key_msg,
    };
  }

  // ── stopping: the wallet's word, the merchant's word, the timer ──────────────────────────

  /** The wallet's signed stop. Stopping a session that is already closed just reports its state. */
  async walletStop(request: unknown): Promise<StopResponseBody> {
    checkSchema(StopRequest, request, 'stop request');
    const transactionId = transactionIdOf(request.stop.body);
    const key = await this.sessionKey(transactionId);
    await verifyMessage(request.stop, 'wallet.stop', key.resolve, this.crypto);
    return this.closeSession(transactionId, 'wallet');
  }

  /** The merchant's own word: close the session and report it. */
  async stop(transactionId: string): Promise<StopResponseBody> {
    return this.closeSession(transactionId, 'merchant');
  }

  /**
   * The timer: close every open session whose time is up, then (re)send every stored record that
   * is due. Run it periodically (the Fastify plugin does, see `sweepIntervalMs`).
   */
  async sweep(): Promise<SweepResult> {
    const now = this.clock.now();
    const result: SweepResult = { closed: [], reported: [], failed: [] };
    // Each expired session is closed on its own: one that fails is logged, pushed back by a
    // back-off, and the others go on (a failure at the head of the order must not hold up the rest).
    const expiredRows = await this.db.query<{ transaction_id: string; close_attempts: number }>(
      `SELECT transaction_id, close_attempts FROM merchant_sessions WHERE state = 'open' AND expires_at <= $1 AND close_next_at <= $1
        ORDER BY expires_at LIMIT ${SWEEP_BATCH}`,
      [now],
    );
    for (const { transaction_id, close_attempts } of expiredRows) {
      let closed: boolean;
      try {
        closed = await this.db.transaction(async (tx) => {
          const [s] = await tx.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM merchant_sessions WHERE transaction_id = $1 FOR UPDATE`, [transaction_id]);
          if (s?.state !== 'open' || Number(s.expires_at) > now) return false;
          await this.closeInTx(tx, s, 'timer', now);
          return true;
        }, PER_SESSION);
      } catch (e) {
        const attempts = Number(close_attempts) + 1;
        const message = e instanceof Error ? e.message : String(e);
        await this.db.query(
          `UPDATE merchant_sessions SET close_attempts = $2, close_next_at = $3, close_error = $4 WHERE transaction_id = $1 AND state = 'open'`,
          [transaction_id, attempts, now + backoffDelay(attempts, SWEEP_BACKOFF), message.slice(0, 500)],
        );
        this.log.error({ transactionId: transaction_id, attempts, error: message }, 'trading session not closed at its timer; will retry');
        result.failed.push(transaction_id);
        continue;
      }
      if (closed) {
        this.sessionKeys.delete(transaction_id);
        result.closed.push(transaction_id);
      }
    }
    // Reads older than the window are refused for their time anyway: their ids need no keeping.
    await this.db.query('DELETE FROM merchant_session_reads WHERE read_time < $1', [now - 2 * SESSION_READ_WINDOW_MS]);
    const due = await this.db.query<{ msg_id: string; transaction_id: string }>(
      `SELECT key AS msg_id, payload->>'transactionId' AS transaction_id FROM outbox
        WHERE topic = '${RECORD_TOPIC}' AND done_at IS NULL AND next_attempt_at <= $1
        ORDER BY next_attempt_at LIMIT ${SWEEP_BATCH}`,
      [now],
    );
    for (const r of due) {
      (await this.sendRecord(r.msg_id) ? result.reported : result.failed).push(r.transaction_id);
    }
    return result;
  }

  /**
   * A session for the shop's own code and administration: no credential is asked here, so never
   * route a request from outside to it without one (the module's route checks the shop admin
   * token; a wallet goes through `walletSession`).
   */
  async session(transactionId: string): Promise<SessionView> {
    if (!transactionIdRe.test(transactionId)) throw new ObolError('MALFORMED', 'not a trade handle');
    const [s] = await this.db.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM merchant_sessions WHERE transaction_id = $1`, [transactionId]);
    if (!s) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${transactionId} here`);
    return this.view(s);
  }

  /**
   * A session for its wallet: `authorization` must be `Obol-Session <token>` carrying a
   * `wallet.sessionRead` for this transaction, signed with the session key, fresh, and not used
   * before. Every refusal is the same UNAUTHORIZED with the same words, whether the session does
   * not exist, is someone else's, or the signature is wrong: a stranger learns nothing, not even
   * whether an id is in use. Only once the signature verifies (so the caller holds the key) does
   * the answer say more (stale, already used).
   */
  async walletSession(transactionId: string, authorization: string | undefined): Promise<SessionView> {
    const denied = () => new ObolError('UNAUTHORIZED', 'a trading session is shown only to its wallet (a read signed with the session key) or to the shop’s administration');
    const message = sessionReadFromAuthorization(authorization);
    if (message === undefined || !transactionIdRe.test(transactionId)) throw denied();
    // Always one lookup, known session or not; a key is imported (or taken from the cache) only
    // when the message names the session's own key id: the time taken must not tell a stranger
    // whether the id exists.
    const [s] = await this.db.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM merchant_sessions WHERE transaction_id = $1`, [transactionId]);
    let read: Signed<'wallet.sessionRead'>;
    try {
      const kid = s?.session_kid;
      read = await verifyMessage(message, 'wallet.sessionRead', async (k) => (kid !== undefined && k === kid ? (await this.keyOf(s!)).key : undefined), this.crypto);
    } catch {
      throw denied();
    }
    if (!s || read.body.transactionId !== transactionId) throw denied();
    const now = this.clock.now();
    if (Math.abs(now - read.body.time) > SESSION_READ_WINDOW_MS) {
      throw new ObolError('UNAUTHORIZED', `this session read is not fresh (its time is more than ${SESSION_READ_WINDOW_MS / 1000} s from the merchant's clock): sign a new one`);
    }
    const taken = await this.db.query(
      `INSERT INTO merchant_session_reads (transaction_id, msg_id, read_time) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING RETURNING msg_id`,
      [transactionId, read.body.msgId, read.body.time],
    );
    if (taken.length === 0) throw new ObolError('UNAUTHORIZED', 'this session read was already used: sign a new one');
    return this.view(s);
  }

  private async view(s: SessionRow): Promise<SessionView> {
    const transactionId = s.transaction_id;
    const [r] = await this.db.query<RecordRow & { attempts: number; last_error: string | null }>(
      `SELECT r.msg_id, r.sent_at, r.operator_state, COALESCE(o.attempts, 0) AS attempts, o.last_error
         FROM merchant_records r LEFT JOIN outbox o ON o.topic = '${RECORD_TOPIC}' AND o.key = r.msg_id
        WHERE r.transaction_id = $1`,
      [transactionId],
    );
    return {
      transactionId,
      state: s.state,
      closeReason: s.close_reason,
      pseudonym: s.pseudonym,
      deposit: this.fmt(s.deposit),
      spent: this.fmt(s.spent),
      remaining: this.fmt(s.deposit - s.spent),
      count: s.count,
      expiresAt: Number(s.expires_at),
      report: r
        ? { msgId: r.msg_id, sent: r.sent_at !== null, attempts: r.attempts, operatorState: r.operator_state, lastError: r.last_error }
        : null,
    };
  }

  /** The stored merchant record of a transaction (what was, or will be, sent to the acquirer). */
  async record(transactionId: string): Promise<Signed<'merchant.record'> | undefined> {
    const [r] = await this.db.query<RecordRow>('SELECT record FROM merchant_records WHERE transaction_id = $1', [transactionId]);
    return r?.record;
  }

  /**
   * FIG 4 disputes, the merchant's side: the evidence of purchase n as the merchant holds it — its
   * signed description and encrypted product as delivered, the ciphertext, the shopper's signed
   * accept, the wrapped key it sent, its own certificate and the temporary certificate its operator
   * re-issued. The same format the wallet exports, for the same arbiter.
   */
  async exportEvidence(transactionId: string, n: number): Promise<EvidenceBundle> {
    if (!transactionIdRe.test(transactionId)) throw new ObolError('MALFORMED', 'not a trade handle');
    const [o] = await this.db.query<OrderRow & { info: Signed<'acquirer.info'>; list_salt: string }>(
      `SELECT o.n, o.product_id, o.price, o.content_hash, o.description_hash, o.accept_msg, o.key_msg, s.info, s.list_salt FROM merchant_orders o
         JOIN merchant_sessions s ON s.transaction_id = o.transaction_id
        WHERE o.transaction_id = $1 AND o.n = $2`,
      [transactionId, n],
    );
    if (!o?.accept_msg) throw new ObolError('NO_ACCEPT', `purchase ${n} of ${transactionId} was never accepted: there is nothing to dispute`);
    const version = await this.catalogue.version(o.content_hash);
    if (!version) throw new ObolError('INTERNAL', `the product delivered for purchase ${n} of ${transactionId} is missing`);
    const cert = (c: Cert | string) => (typeof c === 'string' ? certToBase64(parseCert(c)) : certToBase64(c));
    return {
      format: EVIDENCE_FORMAT,
      presentedBy: 'merchant',
      transactionId,
      n,
      merchantId: this.merchantId,
      merchantOperatorId: this.config.operatorId,
      description: version.signedDescription,
      product: version.signedProduct,
      ciphertext: Buffer.from(version.ciphertext).toString('base64url'),
      accept: o.accept_msg,
      // The opening of the accept's commitment, for the arbiter only.
      opening: {
        listSalt: o.list_salt,
        n,
        productId: o.product_id,
        price: o.price,
        receivedHash: o.content_hash,
        descriptionHash: o.description_hash ?? version.descriptionHash,
      },
      key: o.key_msg,
      merchantCert: cert(this.config.merchantCert),
      tempCert: o.info.body.tempCert,
      operatorCerts: [cert(this.operatorCert)],
      exportedAt: this.clock.now(),
    };
  }

  /** Resolves when every report started in the background so far has been tried once. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Wait for background reports, then release the default HTTP pool. The database is the caller's. */
  async close(): Promise<void> {
    await this.settled();
    await this.ownHttp?.close();
  }

  // ── closing and reporting (FIG 3 step 9) ─────────────────────────────────────────────────

  /** Close a session if it is open (idempotent) and report it in the background. */
  private async closeSession(transactionId: string, reason: CloseReason): Promise<StopResponseBody> {
    if (!transactionIdRe.test(transactionId)) throw new ObolError('MALFORMED', 'not a trade handle');
    const now = this.clock.now();
    const outcome = await this.db.transaction(async (tx) => {
      const s = await this.lockSession(tx, transactionId);
      // The wallet learns the refund lines before clearing here, so that its record agrees (read
      // once, under the session's lock: the record's hash covers the same lines).
      const refundLines = await this.refundLinesOf(tx, transactionId);
      const closed = s.state === 'open' ? await this.closeInTx(tx, s, now >= Number(s.expires_at) ? 'timer' : reason, now, refundLines) : undefined;
      return { s, closed, refundLines };
    }, PER_SESSION);
    if (outcome.closed) {
      this.sessionKeys.delete(transactionId);
      this.reportInBackground(outcome.closed);
    }
    const { s, refundLines } = outcome;
    const answer: StopResponseBody = {
      transactionId,
      state: outcome.closed ? 'closing' : s.state,
      total: this.fmt(s.spent),
      count: s.count,
    };
    if (refundLines.length > 0) answer.refundLines = refundLines;
    return answer;
  }

  /** Close an open session inside `tx` and store its signed record; returns the record. */
  /** `refundLines`: the session's refund lines when the caller has already read them in `tx`. */
  private async closeInTx(
    tx: Queryable,
    s: SessionRow,
    reason: CloseReason,
    now: number,
    refundLines?: Signed<'merchant.refundLine'>[],
  ): Promise<Signed<'merchant.record'>> {
    this.held.delete(s.transaction_id);
    const lines = await this.acceptedLines(tx, s.transaction_id);
    if (lines.length !== s.count) throw new ObolError('INTERNAL', `transaction ${s.transaction_id} has ${lines.length} accepted lines but counts ${s.count}`);
    // Refund lines before clearing lower the total reported and are covered by the list's hash.
    const refunds = (refundLines ?? (await this.refundLinesOf(tx, s.transaction_id))).map((l) => l.body);
    const body: MessageBody<'merchant.record'> = {
      msgId: randomId(16, this.crypto),
      transactionId: s.transaction_id,
      count: s.count,
      total: recordTotalText(this.fmt(s.spent), lines, refunds),
      purchasesHash: await recordPurchasesHash(s.list_salt, lines, this.crypto, refunds),
      proof: s.latest_accept,
      time: now,
    };
    const record = await signMessage('merchant.record', body, this.config.key.signer);
    await tx.query(
      `UPDATE merchant_sessions SET state = 'closing', close_reason = $2, closed_at = $3 WHERE transaction_id = $1 AND state = 'open'`,
      [s.transaction_id, reason, now],
    );
    await tx.query(
      `INSERT INTO merchant_records (msg_id, transaction_id, record, created_at) VALUES ($1, $2, $3::text::jsonb, $4)`,
      [body.msgId, s.transaction_id, JSON.stringify(record), now],
    );
    await enqueue(tx, RECORD_TOPIC, body.msgId, { transactionId: s.transaction_id }, now);
    this.log.info({ transactionId: s.transaction_id, reason, count: s.count, total: body.total }, 'trading session closed');
    return record;
  }

  private async closeWith(tx: Queryable, s: SessionRow, reason: CloseReason, now: number, error: ObolError): Promise<Outcome<never>> {
    return { error, closed: await this.closeInTx(tx, s, reason, now) };
  }

  /** After the transaction committed: report what it closed, then answer or throw. */
  private settle<T>(outcome: Outcome<T>): T {
    if ('ok' in outcome) return outcome.ok;
    this.sessionKeys.delete(outcome.closed.body.transactionId);
    this.reportInBackground(outcome.closed);
    throw outcome.error;
  }

  private reportInBackground(record: Signed<'merchant.record'>): void {
    const msgId = record.body.msgId;
    this.justClosed.set(msgId, { msg_id: msgId, transaction_id: record.body.transactionId, record, sent_at: null });
    const p = this.sendRecord(msgId)
      .catch((e: unknown) => {
        this.log.error({ err: e, transactionId: record.body.transactionId }, 'merchant record not sent');
      })
      .finally(() => this.justClosed.delete(msgId));
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  /**
   * Send one stored record now, if its next try has come (once at a time per process); true when
   * the acquirer acknowledged it (now or before).
   */
  private sendRecord(msgId: string): Promise<boolean> {
    const running = this.inflight.get(msgId);
    if (running) return running;
    const p = this.outbox
      .dispatchOne(RECORD_TOPIC, msgId)
      .then(async (outcome) => outcome === 'delivered' || (outcome === 'not-due' && (await this.recordSent(msgId))))
      .finally(() => this.inflight.delete(msgId));
    this.inflight.set(msgId, p);
    return p;
  }

  /** The acquirer refused a record for good: its session stops waiting (reported, the record refused). */
  private async recordRefused(msgId: string, transactionId: string, e: ObolError): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(`UPDATE merchant_sessions SET state = 'reported' WHERE transaction_id = $1 AND state = 'closing'`, [transactionId]);
      await tx.query(`UPDATE merchant_records SET sent_at = $2, operator_state = 'refused' WHERE msg_id = $1 AND sent_at IS NULL`, [msgId, this.clock.now()]);
    }, PER_SESSION);
  }

  private async recordSent(msgId: string): Promise<boolean> {
    const [row] = await this.db.query<{ sent_at: bigint | null }>('SELECT sent_at FROM merchant_records WHERE msg_id = $1', [msgId]);
    return row?.sent_at !== null && row?.sent_at !== undefined;
  }

  /**
   * The outbox's delivery of one record: send it as stored, check the answer, keep it with the
   * record and move the session on. Throws to have the outbox try again later (or, for a final
   * refusal, end the entry).
   */
  private async deliverRecord(msgId: string): Promise<unknown> {
    const kept = this.justClosed.get(msgId);
    this.justClosed.delete(msgId); // a later try reads the row: it may have been sent meanwhile
    const row =
      kept ?? (await this.db.query<RecordRow>('SELECT msg_id, transaction_id, record, sent_at FROM merchant_records WHERE msg_id = $1', [msgId]))[0];
    if (!row) throw new ObolError('INTERNAL', `no merchant record ${msgId}`);
    if (row.sent_at !== null) return undefined;
    const transactionId = row.transaction_id;
    const answer = await this.http(this.recordUrl, row.record).catch(async (e: unknown) => {
      // Only the acquirer's own answer can be final (a refusal that sending again cannot change,
      // e.g. SESSION_CLOSED: the transaction never opened there); our checks of it below are not.
      // The outbox ends the entry on the same judgement; the session is done, and says why.
      if (isFinalRefusal(e)) await this.recordRefused(msgId, transactionId, e);
      throw e;
    });
    checkSchema(RecordResponse, answer, 'the acquirer’s answer to a merchant record');
    if (answer.transactionId !== transactionId) {
      throw new ObolError('MALFORMED', `the acquirer answered for transaction ${answer.transactionId}, not ${transactionId}`);
    }
    const response: RecordResponseBody = answer;
    const clearing = answer.clearing ? await this.verifyClearing(answer.clearing, transactionId) : null;
    const now = this.clock.now();
    await this.db.transaction(async (tx) => {
      // The session row first (the agent's lock order), then its record.
      await tx.query(
        `UPDATE merchant_sessions SET state = $2 WHERE transaction_id = $1 AND state IN ('closing', 'reported')`,
        [transactionId, clearing ? 'cleared' : 'reported'],
      );
      await tx.query(
        `UPDATE merchant_records SET sent_at = $2, response = $3::text::jsonb, operator_state = $4, clearing = $5::text::jsonb
          WHERE msg_id = $1 AND sent_at IS NULL`,
        [msgId, now, JSON.stringify(response), response.state, clearing ? JSON.stringify(clearing) : null],
      );
    }, PER_SESSION);
    this.log.info({ transactionId, operatorState: response.state, cleared: clearing !== null }, 'merchant record delivered');
    return { state: response.state };
  }

  /** A clearing in the acquirer's answer counts only if our operator signed it for this transaction. */
  private async verifyClearing(message: unknown, transactionId: string): Promise<Signed<'acquirer.clearing'> | null> {
    try {
      const clearing = await verifyMessage(message, 'acquirer.clearing', this.operatorResolver, this.crypto);
      if (clearing.body.transactionId !== transactionId) throw new ObolError('MALFORMED', 'the clearing is for another transaction');
      return clearing;
    } catch (e) {
      this.log.warn({ transactionId, error: (e as Error).message }, 'ignoring a clearing that does not verify');
      return null;
    }
  }

  // ── helpers ──────────────────────────────────────────────────────────────────────────────

  private readonly operatorResolver: KeyResolver = (kid) => (kid === this.operatorKid ? this.operatorKey : undefined);

  /**
   * The session, locked for the rest of this transaction and read once the lock is held (so it is
   * the latest committed state, see PER_SESSION). Every transaction that decides about a session
   * starts here.
   */
  private async lockSession(tx: Queryable, transactionId: string): Promise<SessionRow> {
    const [s] = await tx.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM merchant_sessions WHERE transaction_id = $1 FOR UPDATE`, [transactionId]);
    if (!s) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${transactionId} here`);
    return s;
  }

  /** The session as the database has it now (no lock), or undefined. */
  private async readSession(transactionId: string): Promise<SessionRow | undefined> {
    const [s] = await this.db.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM merchant_sessions WHERE transaction_id = $1`, [transactionId]);
    return s;
  }

  /** The open session, locked for this transaction; a closed one is SESSION_CLOSED. */
  private async openSession(tx: Queryable, transactionId: string): Promise<SessionRow> {
    return requireOpen(await this.lockSession(tx, transactionId));
  }

  private async importSessionKey(spki: string): Promise<SessionKey> {
    const kid = await keyIdOf(spki, this.crypto);
    const key = await importPublicKey(spki, this.crypto);
    return { kid, key, resolve: (k) => (k === kid ? key : undefined) };
  }

  /** The key of a session row: from the per-process cache, or imported from the row. */
  private async keyOf(s: SessionRow): Promise<SessionKey> {
    const cached = this.sessionKeys.get(s.transaction_id);
    if (cached) return cached;
    const key = await this.importSessionKey(s.session_key);
    if (s.state === 'open') this.cacheKey(s.transaction_id, key);
    return key;
  }

  /** The session's key: from the per-process cache, or imported once from the database. */
  private async sessionKey(transactionId: string): Promise<SessionKey> {
    const cached = this.sessionKeys.get(transactionId);
    if (cached) return cached;
    const [s] = await this.db.query<{ session_key: string }>('SELECT session_key FROM merchant_sessions WHERE transaction_id = $1', [transactionId]);
    if (!s) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${transactionId} here`);
    const key = await this.importSessionKey(s.session_key);
    this.cacheKey(transactionId, key);
    return key;
  }

  /**
   * The session's K1, unsealed and imported for wrapping once per session rather than on every
   * accept. Keyed by the sealed value itself, so a row that changed is never answered from here.
   */
  private k1Of(s: SessionRow): Promise<CryptoKey> {
    const cacheKey = `${s.transaction_id}|${s.k1_sealed}`;
    let key = this.k1Keys.get(cacheKey);
    if (!key) {
      key = this.sealKeys.open(s.k1_sealed, { column: SESSION_K1_COLUMN, rowId: s.transaction_id }).then((k1) => importK1ForWrap(k1, this.crypto));
      this.k1Keys.set(cacheKey, key);
      key.catch(() => this.k1Keys.delete(cacheKey));
    }
    return key;
  }

  private cacheKey(transactionId: string, key: SessionKey): void {
    if (this.sessionKeys.size >= MAX_CACHED_KEYS) {
      const oldest = this.sessionKeys.keys().next().value;
      if (oldest !== undefined) this.sessionKeys.delete(oldest);
    }
    this.sessionKeys.set(transactionId, key);
  }

  /** An amount in the merchant's currency, written canonically. */
  private ourAmount(text: string, what: string): Amount {
    const a = parseAmount(text);
    if (a.currency !== this.currency) throw new ObolError('CURRENCY_MISMATCH', `${what} is in ${a.currency}; this merchant takes ${this.currency}`);
    if (formatAmount(a) !== text) throw new ObolError('MALFORMED', `${what} must be written canonically (${formatAmount(a)}), got ${text}`);
    if (a.value < 0n) throw new ObolError('INVALID_AMOUNT', `${what} cannot be negative`);
    return a;
  }

  private fmt(value: bigint): string {
    return formatAmount({ currency: this.currency, value });
  }

  private acceptResponse(transactionId: string, n: number, charged: bigint, deposit: bigint, key: Signed<'merchant.key'>): AcceptResponseBody {
    return { transactionId, n, charged: this.fmt(charged), remaining: this.fmt(deposit - charged), key };
  }
}

// content_hash: SHA-256 of what is delivered — the ciphertext, prepared once for everyone. An
// order not yet accepted may be sent again (the wallet retrying); it replaces the unaccepted one.
const ORDER_COLUMNS = 'transaction_id, n, product_id, price, amount, order_msg, content_hash, description_hash, ordered_at';
const ORDER_CONFLICT = `ON CONFLICT (transaction_id, n) DO UPDATE
           SET product_id = EXCLUDED.product_id, price = EXCLUDED.price, amount = EXCLUDED.amount,
               order_msg = EXCLUDED.order_msg, content_hash = EXCLUDED.content_hash,
               description_hash = EXCLUDED.description_hash, ordered_at = EXCLUDED.ordered_at
         WHERE merchant_orders.accept_id IS NULL`;
const ORDER_INSERT = `(${ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9) ${ORDER_CONFLICT}`;
/** The same insert when `condition` holds (typed: a SELECT list does not take the columns' types). */
const orderInsertIf = (condition: string) =>
  `(${ORDER_COLUMNS}) SELECT $1::text, $2::integer, $3::text, $4::text, $5::bigint, $6::text::jsonb, $7::text, $8::text, $9::bigint WHERE ${condition} ${ORDER_CONFLICT}`;

/**
 * Rows of statement parameters as one array per column (for `unnest`): numbers and bigints as
 * text, which both engines read back into the column's type; NULL stays NULL.
 */
function columnsOf(rows: readonly unknown[][]): unknown[][] {
  return rows[0]!.map((_, c) => rows.map((r) => (typeof r[c] === 'bigint' || typeof r[c] === 'number' ? String(r[c]) : r[c])));
}

/**
 * Whether an open session takes order `o` now — the one rule of admission: undefined when it does;
 * a refusal is thrown; an order that finds the session expired or its deposit used up closes it.
 */
function admitOrder(s: SessionRow, o: MessageBody<'wallet.order'>, price: Amount, now: number): { reason: CloseReason; error: ObolError } | undefined {
  if (now >= Number(s.expires_at)) return { reason: 'timer', error: expired(s.transaction_id) };
  if (o.n !== s.count + 1) {
    throw new ObolError('OUT_OF_SEQUENCE', `order ${o.n} is out of sequence: ${s.count} purchase(s) accepted, the next order is ${s.count + 1}`);
  }
  if (s.list_salt !== null && s.list_salt !== o.listSalt) {
    throw new ObolError('MALFORMED', 'the order’s listSalt differs from the one this transaction started with');
  }
  if (s.spent + price.value > s.deposit) {
    const left = formatAmount({ currency: s.currency, value: s.deposit - s.spent });
    return {
      reason: 'deposit-used',
      error: new ObolError('DEPOSIT_EXHAUSTED', `${o.price} does not fit in what is left of the deposit (${left}); the transaction is being cleared`),
    };
  }
  return undefined;
}

/** The product version an order is for, if it is for sale at the order's price: else the refusal. */
function offered(ready: ReadyVersion | undefined, o: MessageBody<'wallet.order'>): ReadyVersion {
  if (!ready) throw new ObolError('UNKNOWN_PRODUCT', `there is no product ${o.productId}`);
  if (ready.product.price !== o.price) {
    throw new ObolError('PRODUCT_MISMATCH', `${o.productId} costs ${ready.product.price}, the order says ${o.price}`);
  }
  return ready;
}

function requireOpen(s: SessionRow): SessionRow {
  if (s.state !== 'open') throw new ObolError('SESSION_CLOSED', `transaction ${s.transaction_id} is closed (${s.close_reason})`);
  return s;
}

function expired(transactionId: string): ObolError {
  return new ObolError('SESSION_EXPIRED', `transaction ${transactionId} has expired; it is being cleared`);
}

/** The transaction id of a not-yet-verified body, only to find the key to verify it with. */
function transactionIdOf(body: object): string {
  const id = (body as { transactionId?: unknown }).transactionId;
  if (typeof id !== 'string' || !transactionIdRe.test(id)) throw new ObolError('MALFORMED', 'the message names no valid transactionId');
  return id;
}

function checkSalt(salt: string): void {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(salt);
  } catch {
    throw new ObolError('MALFORMED', 'listSalt is not base64url');
  }
  if (bytes.length < SALT_MIN_BYTES || bytes.length > SALT_MAX_BYTES) {
    throw new ObolError('MALFORMED', `listSalt must be ${SALT_MIN_BYTES} to ${SALT_MAX_BYTES} random bytes`);
  }
}

