import Type, { type Static, type TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import { ObolError } from './errors.ts';
import { BILLING_RECORD_ID_PATTERN } from './billingIds.ts';
import { OPERATOR_ID_PATTERN, SESSION_ID_PATTERN, TRADE_HANDLE_PATTERN, TRANSACTION_ID_PATTERN } from './identity.ts';

/**
 * Every message of the protocol, as a JSON Schema (TypeBox) with its TypeScript type derived
 * from it. Numbers in comments are DESIGN.md's steps. Bodies are closed (no extra members): a
 * receiver never acts on a field it did not expect.
 */

// ── building blocks ─────────────────────────────────────────────────────────────────────────
/** Money on the wire: "EUR:0.05". The schema checks the shape; `parseAmount` checks currency and digits. */
export const Money = Type.String({ pattern: '^[A-Z]{3}:-?[0-9]{1,18}(\\.[0-9]{1,4})?$', maxLength: 32 });
/** A non-negative amount: deposits, prices, totals. */
export const PositiveMoney = Type.String({ pattern: '^[A-Z]{3}:[0-9]{1,18}(\\.[0-9]{1,4})?$', maxLength: 32 });
export const OperatorIdT = Type.String({ pattern: OPERATOR_ID_PATTERN });
export const SessionIdT = Type.String({ pattern: SESSION_ID_PATTERN });
/** The TransactionIdentity: between the wallet and its own account manager only. */
export const TransactionIdT = Type.String({ pattern: TRANSACTION_ID_PATTERN });
/**
 * The trade handle (identity.ts): the transaction as the acquirer, the merchant and the arbiter
 * know it. Every message beyond the customer's account manager names it, in its `transactionId`
 * field, and never the TransactionIdentity, which would tell which deposits came from one logon.
 */
export const TradeHandleT = Type.String({ pattern: TRADE_HANDLE_PATTERN });
/** Every message carries an id; handling the same id twice changes nothing the second time. */
export const MsgId = Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' });
/** A billing record's id: see billingIds.ts (a kind prefix and the transaction id, unchanged). */
export const BillingRecordIdT = Type.String({ pattern: BILLING_RECORD_ID_PATTERN });
export const B64u = (maxLength: number) => Type.String({ pattern: '^[A-Za-z0-9_-]+$', maxLength });
/** An X.509 certificate, base64url DER. */
export const CertT = B64u(8192);
/** A bare public key, base64url SPKI DER. */
export const SpkiT = B64u(512);
/** SHA-256 digest, base64url. */
export const HashT = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' });
/** Milliseconds since the epoch. */
export const TimeT = Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 });
export const MerchantIdT = Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{0,62}$' });
export const ProductIdT = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' });
export const OriginT = Type.String({ pattern: '^https?://[a-z0-9.-]+(:[0-9]{1,5})?$', maxLength: 255 });
/** A decimal rate as published in exchange tables. */
export const DecimalRateT = Type.String({ pattern: '^[0-9]{1,12}(\\.[0-9]{1,12})?$' });
/** A pinned rate: a decimal, or an exact fraction "num/den" when a cross rate does not terminate. */
export const RateT = Type.String({ pattern: '^([0-9]{1,24}(\\.[0-9]{1,24})?|[1-9][0-9]{0,39}/[1-9][0-9]{0,39})$' });
export const SeqT = Type.Integer({ minimum: 1, maximum: 1_000_000 });

const closed = { additionalProperties: false } as const;

/** A signed message nested inside another (e.g. the accept a merchant shows as proof). */
export const NestedSigned = (type: string) =>
  Type.Object(
    {
      v: Type.Literal(1),
      type: Type.Literal(type),
      kid: Type.String({ minLength: 1, maxLength: 64 }),
      body: Type.Object({}, { additionalProperties: true }),
      sig: B64u(200),
    },
    closed,
  );

// ── exchange table (signed by an operator) ─────────────────────────────────────────────────
export const ExchangeTableBody = Type.Object(
  {
    operatorId: OperatorIdT,
    base: Type.String({ pattern: '^[A-Z]{3}$' }),
    rates: Type.Record(Type.String({ pattern: '^[A-Z]{3}$' }), DecimalRateT),
    issuedAt: TimeT,
    expiresAt: TimeT,
  },
  closed,
);

// ── logon (before step 2): the wallet signs a fresh challenge with its long-term key ───────
export const WalletLogin = Type.Object(
  { msgId: MsgId, customerId: Type.String({ minLength: 1, maxLength: 64 }), challenge: B64u(64), time: TimeT },
  closed,
);

// ── FIG 2, step 2: wallet → its account manager ────────────────────────────────────────────
export const WalletInitiate = Type.Object(
  {
    msgId: MsgId,
    sessionId: SessionIdT,
    merchantId: MerchantIdT,
    merchantOperatorId: OperatorIdT,
    /** Order info: the size of the purchase that made the wallet open this deposit. */
    firstPrice: PositiveMoney,
    /** Deposit to reserve, in the customer's currency. */
    deposit: PositiveMoney,
    timeoutSec: Type.Integer({ minimum: 10, maximum: 86_400 }),
    sessionPublicKey: SpkiT,
    /** The secure-delivery key K1 (AES-256, base64url): the trusted party relays it (FIG 4). */
    k1: B64u(64),
    /** The exchange table the shopper was shown: the rate is pinned to it. */
    shownTableIssuedAt: TimeT,
    time: TimeT,
  },
  closed,
);

// ── step 3: customer's account manager → merchant's acquirer (vouches for the customer) ────
export const AmInitiate = Type.Object(
  {
    msgId: MsgId,
    transactionId: TradeHandleT,
    customerOperatorId: OperatorIdT,
    pseudonym: B64u(64),
    merchantId: MerchantIdT,
    // No first price (the wallet's order info): the customer's operator checks the deposit covers
    // it; the acquirer needs only the deposit, and a price can be matched against a catalogue.
    depositCustomer: PositiveMoney,
    depositMerchant: PositiveMoney,
    /** Customer currency → merchant currency, as used for depositMerchant. */
    rate: RateT,
    tempCert: CertT,
    k1: B64u(64),
    timeoutSec: Type.Integer({ minimum: 10, maximum: 86_400 }),
    expiresAt: TimeT,
    time: TimeT,
  },
  closed,
);

// ── step 4: acquirer → merchant agent: the information message ─────────────────────────────
export const AcquirerInfo = Type.Object(
  {
    msgId: MsgId,
    transactionId: TradeHandleT,
    merchantId: MerchantIdT,
    pseudonym: B64u(64),
    deposit: PositiveMoney,
    /** The temporary certificate, re-issued by the merchant's own operator. */
    tempCert: CertT,
    /** K1, signed by the trusted party as part of this message. */
    k1: B64u(64),
    timeoutSec: Type.Integer({ minimum: 10, maximum: 86_400 }),
    expiresAt: TimeT,
    time: TimeT,
  },
  closed,
);

// ── steps 5–7: acknowledgements ────────────────────────────────────────────────────────────
export const MerchantAck = Type.Object(
  { msgId: MsgId, transactionId: TradeHandleT, infoMsgId: MsgId, time: TimeT },
  closed,
);
export const AcquirerAck = Type.Object(
  {
    msgId: MsgId,
    transactionId: TradeHandleT,
    rate: RateT,
    depositMerchant: PositiveMoney,
    merchantCert: CertT,
    merchantUrl: Type.String({ maxLength: 255 }),
    expiresAt: TimeT,
    time: TimeT,
  },
  closed,
);
export const AmAck = Type.Object(
  {
    msgId: MsgId,
    /** For the wallet's own records with its bank (status, history). */
    transactionId: TransactionIdT,
    /** For everything with the merchant: orders, accepts, stops, the customer record. */
    handle: TradeHandleT,
    rate: RateT,
    depositCustomer: PositiveMoney,
    depositMerchant: PositiveMoney,
    /** The merchant's certificate, re-issued by the customer's own operator for the wallet. */
    merchantCert: CertT,
    merchantUrl: Type.String({ maxLength: 255 }),
    tempCert: CertT,
    expiresAt: TimeT,
    time: TimeT,
  },
  closed,
);

// ── purchases inside a trading session (wallet ↔ merchant, session key) ───────────────────
export const WalletOrder = Type.Object(
  {
    transactionId: TradeHandleT,
    n: SeqT,
    productId: ProductIdT,
    price: PositiveMoney,
    origin: OriginT,
    /**
     * Salt of the purchase-list hash, chosen by the wallet for the transaction and the same in
     * every order: wallet and merchant know it, operators never see it, so the hash they compare
     * at clearing tells them nothing about what was bought.
     */
    listSalt: B64u(64),
    time: TimeT,
  },
  closed,
);

/** FIG 4: signed once per product by the merchant. */
export const MerchantDescription = Type.Object(
  {
    productId: ProductIdT,
    title: Type.String({ maxLength: 200 }),
    description: Type.String({ maxLength: 4000 }),
    price: PositiveMoney,
    contentType: Type.String({ maxLength: 100 }),
    /** SHA-256 of the plaintext: what the wallet checks after decryption. */
    contentHash: HashT,
  },
  closed,
);
/**
 * FIG 4: sign_M([product]^K2, productId), signed once per product over the ciphertext's hash.
 * AES-256-GCM under the product's own K2 (see delivery.ts); `size` is the ciphertext's length.
 */
export const MerchantProduct = Type.Object(
  { productId: ProductIdT, ciphertextHash: HashT, iv: B64u(32), size: Type.Integer({ minimum: 16, maximum: 16 * 1024 * 1024 }) },
  closed,
);

/**
 * FIG 4: the accept — the moment purchase n is charged. It is also the merchant's proof at clearing
 * (FIG 3 step 9), so its operator reads it: it says how much and nothing of what. The purchase is
 * bound by `commitment` (purchaseList.ts `purchaseCommitment`: SHA-256 over the transaction's list
 * salt and `{n, productId, price, receivedHash, descriptionHash}`); the merchant recomputes it from
 * the order it delivered, and an arbiter from the opening the parties reveal to it. No price
 * either: the cumulative is what the proof proves.
 */
export const WalletAccept = Type.Object(
  {
    /** Unique, time-stamped: an accept counts once however often it is replayed. */
    acceptId: MsgId,
    transactionId: TradeHandleT,
    n: SeqT,
    /** Total of all accepted purchases of this transaction, this one included. */
    cumulative: PositiveMoney,
    commitment: HashT,
    time: TimeT,
  },
  closed,
);
/** FIG 4: sign_M([K2]^K1) (AES-KW, RFC 3394), per purchase the only thing the merchant signs. */
export const MerchantKey = Type.Object(
  { transactionId: TradeHandleT, n: SeqT, productId: ProductIdT, acceptId: MsgId, wrappedK2: B64u(128) },
  closed,
);

// ── disputes (FIG 4): the arbiter asks the trusted party for K1 ───────────────────────────
/** Signed by an arbiter key the merchant's operator is configured to trust. */
export const ArbiterKeyRequest = Type.Object(
  {
    msgId: MsgId,
    transactionId: TradeHandleT,
    /** The merchant the evidence names: the operator releases K1 only for a transaction of this merchant. */
    merchantId: MerchantIdT,
    /** The arbiter's own reference for the case, for the operator's log. */
    caseRef: Type.String({ maxLength: 120 }),
    time: TimeT,
  },
  closed,
);
/** The trusted party's answer: K1 as it relayed it to the merchant at initiation, signed. */
export const AcquirerKeyRelease = Type.Object(
  {
    msgId: MsgId,
    requestMsgId: MsgId,
    transactionId: TradeHandleT,
    merchantId: MerchantIdT,
    k1: B64u(64),
    time: TimeT,
  },
  closed,
);

export const SessionStop = Type.Object(
  {
    msgId: MsgId,
    transactionId: TradeHandleT,
    reason: Type.Union([Type.Literal('wallet'), Type.Literal('merchant'), Type.Literal('deposit-used'), Type.Literal('timer')]),
    time: TimeT,
  },
  closed,
);

/**
 * The wallet asks the merchant for its view of a trading session (`GET {shop}/obol/sessions/:id`),
 * signed with the session key: only the holder of that key — or the shop's administration — may
 * read a session. The merchant takes it only while `time` is fresh and only once per `msgId`, so a
 * header that leaked (a log, a proxy) cannot be used again.
 */
export const WalletSessionRead = Type.Object({ msgId: MsgId, transactionId: TradeHandleT, time: TimeT }, closed);

/**
 * Issue 14: "deliver again what I bought" — purchase `n` of this transaction, named by the acceptId
 * of the accept the merchant holds, asked for again after a reload, in a new tab or after clearing.
 * Signed with the session key of that transaction: only the wallet that made the purchase holds
 * it, so the signature together with the merchant's own record of that accept (and of the key it
 * signed for it) is the proof, and nothing is charged. Fresh (`time` within the session-read window
 * of the merchant's clock) and taken once per `msgId`, so a request that leaked cannot be played
 * again by someone else.
 */
export const WalletRedeliver = Type.Object({ msgId: MsgId, transactionId: TradeHandleT, n: SeqT, acceptId: MsgId, time: TimeT }, closed);

/**
 * A merchant asks its own operator for its statement (`POST /v1/acquirer/statement`): its
 * balance, its deposits, what it is owed. Signed with the merchant's registered key — never the
 * operator's admin token — and taken only while `time` is fresh and only once per `msgId`, so a
 * request that leaked cannot be played again. `since` (ms) and `limit` bound the deposits listed.
 */
export const MerchantStatementRequest = Type.Object(
  {
    msgId: MsgId,
    merchantId: MerchantIdT,
    time: TimeT,
    since: Type.Optional(TimeT),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  closed,
);

// ── FIG 3: conclusion ──────────────────────────────────────────────────────────────────────
const recordFields = {
  msgId: MsgId,
  transactionId: TradeHandleT,
  count: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  total: PositiveMoney,
  /** Salted SHA-256 of the purchase list: operators compare it, never learn what was bought. */
  purchasesHash: HashT,
  time: TimeT,
};
/** Step 8: the customer transaction record (session key). */
export const WalletRecord = Type.Object(recordFields, closed);
/** Step 8: forwarded by the customer's account manager to the acquirer. */
export const AmCustomerRecord = Type.Object(
  { msgId: MsgId, transactionId: TradeHandleT, record: NestedSigned('wallet.record'), time: TimeT },
  closed,
);
/** Step 9: the merchant transaction record, with the latest customer-signed accept as proof. */
export const MerchantRecord = Type.Object(
  { ...recordFields, proof: Type.Union([NestedSigned('wallet.accept'), Type.Null()]) },
  closed,
);
/** Step 10: clearing information, acquirer → both account managers. */
export const AcquirerClearing = Type.Object(
  {
    msgId: MsgId,
    transactionId: TradeHandleT,
    outcome: Type.Union([
      Type.Literal('agreed'),
      Type.Literal('proven'),
      Type.Literal('wallet-deadline'),
      Type.Literal('merchant-deadline'),
    ]),
    /** True when the records disagreed and the proven amount was used. */
    flagged: Type.Boolean(),
    count: Type.Integer({ minimum: 0 }),
    /** What the merchant is paid, in the merchant's currency. */
    charged: PositiveMoney,
    /** What goes back to the customer, in the merchant's currency (converted back by the AM). */
    unused: PositiveMoney,
    time: TimeT,
  },
  closed,
);

// ── refunds after clearing (issue 14): merchant → acquirer → customer's account manager ──
/**
 * A merchant gives money back for a cleared transaction, signed with its key. `refundId` is the
 * merchant's own id for it: the same id is the same refund however often it is sent (the
 * acquirer answers it once and moves the money once). No product, no reason: the operators learn
 * an amount, as at clearing, and nothing of what was bought.
 */
export const MerchantRefund = Type.Object(
  { refundId: MsgId, transactionId: TradeHandleT, merchantId: MerchantIdT, amount: PositiveMoney, time: TimeT },
  closed,
);
/**
 * A refund before clearing (issue 14): while the trading session is still open the merchant gives
 * money back for purchase `n` as a line it signs with its key, and the record it reports is the
 * accepted cumulative minus its refund lines (purchaseList.ts `recordPurchasesHash` covers them).
 * The wallet learns the lines in the merchant's answers (accept, stop), checks the signature and
 * sends a record with the same lowered total, so clearing agrees at it and no new money path is
 * needed: the unused deposit goes back larger. `refundId` makes a retry the same line.
 */
export const MerchantRefundLine = Type.Object(
  { refundId: MsgId, transactionId: TradeHandleT, n: SeqT, amount: PositiveMoney, time: TimeT },
  closed,
);
/**
 * The acquirer's refund, to the customer's account manager (and, as its answer, to the merchant):
 * refund number `n` of the transaction, `amount` in the merchant's currency, `refundedTotal` all
 * refunds of it so far with this one. The account manager converts `refundedTotal` before and
 * after this refund back at the transaction's pinned rate, so refunds arriving in any order add
 * up to the conversion of their total (exchangeTable.ts `refundInCustomerCurrency`).
 */
export const AcquirerRefund = Type.Object(
  {
    msgId: MsgId,
    transactionId: TradeHandleT,
    n: SeqT,
    refundId: MsgId,
    amount: PositiveMoney,
    refundedTotal: PositiveMoney,
    time: TimeT,
  },
  closed,
);
/** Most clearings one `acquirer.clearings` carries. */
export const CLEARING_BATCH_MAX = 100;
/**
 * Step 10 for many transactions at once: the acquirer's signed clearings (each as it stands alone,
 * kept by the account manager as it would keep a single one), carried in one message signed by
 * the same key. The receiver checks this one signature — it covers every item's bytes — and
 * applies each item on its own terms, by its transaction (a batch sent again changes nothing).
 */
export const AcquirerClearings = Type.Object(
  {
    msgId: MsgId,
    clearings: Type.Array(NestedSigned('acquirer.clearing'), { minItems: 1, maxItems: CLEARING_BATCH_MAX }),
    time: TimeT,
  },
  closed,
);

// ── step 11: billing records (to billing sinks) ────────────────────────────────────────────
export const WithdrawalRecord = Type.Object(
  {
    recordId: BillingRecordIdT,
    operatorId: OperatorIdT,
    customerId: Type.String({ maxLength: 64 }),
    transactionId: TransactionIdT,
    /** The transaction's trade handle: what the merchant's operator's deposit record names. */
    handle: TradeHandleT,
    merchantOperatorId: OperatorIdT,
    amount: PositiveMoney,
    amountMerchant: PositiveMoney,
    rate: RateT,
    count: Type.Integer({ minimum: 0 }),
    purchasesHash: HashT,
    flagged: Type.Boolean(),
    time: TimeT,
  },
  closed,
);
export const DepositRecord = Type.Object(
  {
    recordId: BillingRecordIdT,
    operatorId: OperatorIdT,
    merchantId: MerchantIdT,
    transactionId: TradeHandleT,
    amount: PositiveMoney,
    count: Type.Integer({ minimum: 0 }),
    purchasesHash: HashT,
    flagged: Type.Boolean(),
    time: TimeT,
  },
  closed,
);

/**
 * A refund record (to billing sinks), on each side of a refund: at the acquirer (`side:
 * 'merchant'`, the merchant's account debited, `transactionId` the trade handle) and at the
 * customer's account manager (`side: 'customer'`, the customer credited in her currency at the
 * transaction's pinned rate, `transactionId` the TransactionIdentity). `amount` is what this
 * operator booked, in its currency; `amountMerchant` the refund as the merchant gave it.
 */
export const RefundRecord = Type.Object(
  {
    recordId: BillingRecordIdT,
    operatorId: OperatorIdT,
    side: Type.Union([Type.Literal('merchant'), Type.Literal('customer')]),
    transactionId: Type.Union([TransactionIdT, TradeHandleT]),
    handle: TradeHandleT,
    n: SeqT,
    merchantId: Type.Optional(MerchantIdT),
    customerId: Type.Optional(Type.String({ maxLength: 64 })),
    /** The other operator of the refund: the customer's (merchant side) or the merchant's (customer side). */
    counterpartOperatorId: OperatorIdT,
    amount: PositiveMoney,
    amountMerchant: PositiveMoney,
    /** The transaction's pinned rate (customer side). */
    rate: Type.Optional(RateT),
    time: TimeT,
  },
  closed,
);

/**
 * A merchant's request to be registered by its operator (`obol merchant init` writes it, `obol
 * register-merchant --request` reads it), signed with the very key it asks a certificate for:
 * proof that whoever sends it holds that key.
 */
export const MerchantRegistration = Type.Object(
  {
    merchantId: MerchantIdT,
    operatorId: OperatorIdT,
    publicKey: SpkiT,
    origins: Type.Array(OriginT, { minItems: 1, maxItems: 16 }),
    /** Where the merchant module is reached, e.g. https://shop.example/obol */
    url: Type.String({ maxLength: 255 }),
    name: Type.String({ minLength: 1, maxLength: 80 }),
    time: TimeT,
  },
  closed,
);

/** The catalogue: message type → schema of its body. A closed set: anything else is refused. */
export const MessageSchemas = {
  'operator.exchangeTable': ExchangeTableBody,
  'wallet.login': WalletLogin,
  'wallet.initiate': WalletInitiate,
  'am.initiate': AmInitiate,
  'acquirer.info': AcquirerInfo,
  'merchant.ack': MerchantAck,
  'acquirer.ack': AcquirerAck,
  'am.ack': AmAck,
  'wallet.order': WalletOrder,
  'merchant.description': MerchantDescription,
  'merchant.product': MerchantProduct,
  'wallet.accept': WalletAccept,
  'merchant.key': MerchantKey,
  'wallet.stop': SessionStop,
  'merchant.stop': SessionStop,
  'wallet.sessionRead': WalletSessionRead,
  'wallet.redeliver': WalletRedeliver,
  'merchant.statement': MerchantStatementRequest,
  'wallet.record': WalletRecord,
  'am.customerRecord': AmCustomerRecord,
  'merchant.record': MerchantRecord,
  'acquirer.clearing': AcquirerClearing,
  'acquirer.clearings': AcquirerClearings,
  'am.withdrawal': WithdrawalRecord,
  'am.deposit': DepositRecord,
  'merchant.refund': MerchantRefund,
  'merchant.refundLine': MerchantRefundLine,
  'acquirer.refund': AcquirerRefund,
  'am.refund': RefundRecord,
  'arbiter.keyRequest': ArbiterKeyRequest,
  'merchant.registration': MerchantRegistration,
  'acquirer.keyRelease': AcquirerKeyRelease,
} as const satisfies Record<string, TSchema>;

export type MessageType = keyof typeof MessageSchemas;
export type MessageBody<T extends MessageType> = Static<(typeof MessageSchemas)[T]>;

export function isMessageType(type: string): type is MessageType {
  return Object.hasOwn(MessageSchemas, type);
}

/** Check a body against its schema; the first problem becomes a MALFORMED error a person can read. */
export function checkMessageBody<T extends MessageType>(type: T, body: unknown): asserts body is MessageBody<T> {
  const schema: TSchema = MessageSchemas[type];
  if (!schema) throw new ObolError('WRONG_MESSAGE_TYPE', `unknown message type ${type}`);
  checkSchema(schema, body, type);
}

/**
 * Each schema compiled once, on first use: checking an uncompiled schema walks it for every value
 * (about 1.5 ms of every purchase went there). Where the page's policy forbids code generation
 * (the extension's CSP), TypeBox's validator falls back to checking without it.
 */
const validators = new WeakMap<TSchema, Validator>();

function validatorOf(schema: TSchema): Validator {
  let v = validators.get(schema);
  if (!v) {
    v = Compile(schema) as Validator;
    validators.set(schema, v);
  }
  return v;
}

/** Check any value against a schema (HTTP bodies, bridge requests) with a readable error. */
export function checkSchema<S extends TSchema>(schema: S, value: unknown, what = 'request'): asserts value is Static<S> {
  const validator = validatorOf(schema);
  if (validator.Check(value)) return;
  const first = validator.Errors(value)[0];
  const where = first?.instancePath ? ` at ${first.instancePath}` : '';
  throw new ObolError('MALFORMED', `${what} is malformed${where}: ${first?.message ?? 'does not match its schema'}`);
}
