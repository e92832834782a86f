import Type, { type Static } from 'typebox';
import { MAX_CIPHERTEXT_B64 } from './delivery.ts';
import {
  B64u,
  CertT,
  HashT,
  MerchantIdT,
  Money,
  NestedSigned,
  OperatorIdT,
  OriginT,
  PositiveMoney,
  ProductIdT,
  RateT,
  SessionIdT,
  SpkiT,
  TimeT,
  TradeHandleT,
  TransactionIdT,
} from './messages.ts';
import type { Signed } from './signed.ts';
import { fromBase64Url, toBase64Url, utf8 } from './webcrypto.ts';

/**
 * The HTTP contract between the parties: paths, request and response bodies. Signed messages
 * travel as they are (`Signed<T>`, checked with `verifyMessage`); everything else is a plain JSON
 * body checked against the schema here. Errors are always `{ error: { code, name, message } }`
 * with a code from the catalogue.
 */

const closed = { additionalProperties: false } as const;

export const ErrorResponse = Type.Object(
  { error: Type.Object({ code: Type.Integer(), name: Type.String(), message: Type.String() }) },
  closed,
);

// ── operator: public ───────────────────────────────────────────────────────────────────────
export const OperatorPaths = {
  health: '/healthz',
  openapi: '/openapi.json',
  info: '/v1/operator',
  exchangeTable: '/v1/exchange-table',
  registerCustomer: '/v1/customers',
  challenge: '/v1/login/challenge',
  login: '/v1/login',
  balance: '/v1/balance',
  demoTopUp: '/v1/demo/top-up',
  initiate: '/v1/initiate',
  customerRecord: '/v1/records',
  transaction: '/v1/transactions/:transactionId',
  /** The logged-on customer's refunds after clearing (bearer token), newest first. */
  refunds: '/v1/refunds',
  /** A merchant's certificate, re-issued by the shopper's own operator, before any deposit. */
  merchantCertificate: '/v1/merchants/:operatorId/:merchantId',
  // merchant → its operator (acquirer role)
  merchantRecord: '/v1/acquirer/merchant-record',
  /** A merchant's own statement: a signed `merchant.statement` (its registered key), fresh and used once. */
  merchantStatement: '/v1/acquirer/statement',
  /** A refund of a cleared transaction (a signed `merchant.refund`). */
  merchantRefund: '/v1/acquirer/refunds',
  // operator ↔ operator
  peerInitiate: '/v1/peer/initiate',
  peerCustomerRecord: '/v1/peer/customer-record',
  peerClearing: '/v1/peer/clearing',
  /** Clearing information for many transactions in one signed `acquirer.clearings`, answered item by item. */
  peerClearings: '/v1/peer/clearings',
  /** A refund after clearing, acquirer → customer's account manager (a signed `acquirer.refund`). */
  peerRefund: '/v1/peer/refund',
  peerMerchant: '/v1/peer/merchants/:merchantId',
  // operator's own administration (bearer admin token)
  adminMerchants: '/v1/admin/merchants',
  adminFund: '/v1/admin/fund',
  adminCreditLimit: '/v1/admin/credit-limit',
  adminBalances: '/v1/admin/balances',
  adminAudit: '/v1/admin/audit',
  adminPositions: '/v1/admin/positions',
  adminSettleDeadlines: '/v1/admin/settle-deadlines',
  // the trusted party's answer to an arbiter (FIG 4 disputes; signed request, arbiter key)
  arbiterKey: '/v1/arbiter/key',
} as const;

export const OperatorInfo = Type.Object(
  {
    operatorId: OperatorIdT,
    name: Type.String(),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    url: Type.String(),
    /** This operator's certificate (signed by the interbank root) and the root itself. */
    operatorCert: CertT,
    /** The operator's message-signing certificate (issued by operatorCert): the key of every message it signs. */
    signingCert: CertT,
    rootCert: CertT,
    demo: Type.Boolean(),
  },
  closed,
);
export type OperatorInfo = Static<typeof OperatorInfo>;

export const RegisterCustomerRequest = Type.Object(
  { publicKey: SpkiT, displayName: Type.Optional(Type.String({ maxLength: 80 })) },
  closed,
);
export const RegisterCustomerResponse = Type.Object(
  { customerId: Type.String(), customerCert: CertT, operatorCert: CertT, signingCert: CertT, rootCert: CertT, currency: Type.String() },
  closed,
);

export const ChallengeRequest = Type.Object({ customerId: Type.String({ minLength: 1, maxLength: 64 }) }, closed);
export const ChallengeResponse = Type.Object({ challenge: B64u(64), expiresAt: TimeT }, closed);
/** The login response: the logged-on relation (SessionIdentity) and a bearer token for reads. */
export const LoginResponse = Type.Object(
  { sessionId: SessionIdT, token: B64u(64), expiresAt: TimeT, balance: Money },
  closed,
);

export const BalanceResponse = Type.Object(
  { customerId: Type.String(), balance: Money, available: Money, held: Money, creditLimit: Money },
  closed,
);
export const DemoTopUpRequest = Type.Object({ amount: PositiveMoney }, closed);

/**
 * A refund after clearing as the shopper's own operator booked it: `amount` in her currency (at
 * the transaction's pinned rate), `amountMerchant` as the merchant gave it.
 */
export const CustomerRefund = Type.Object(
  { transactionId: TransactionIdT, n: Type.Integer({ minimum: 1 }), amount: PositiveMoney, amountMerchant: PositiveMoney, time: TimeT },
  closed,
);
export type CustomerRefund = Static<typeof CustomerRefund>;
export const RefundsResponse = Type.Object({ refunds: Type.Array(CustomerRefund, { maxItems: 1000 }) }, closed);

/** What the wallet learns of a transaction's end (after FIG 3). */
export const TransactionStatus = Type.Object(
  {
    transactionId: TransactionIdT,
    state: Type.Union([
      Type.Literal('open'),
      Type.Literal('reported'),
      Type.Literal('cleared'),
      Type.Literal('failed'),
    ]),
    depositCustomer: PositiveMoney,
    depositMerchant: PositiveMoney,
    rate: RateT,
    chargedCustomer: Type.Optional(PositiveMoney),
    refundCustomer: Type.Optional(PositiveMoney),
    chargedMerchant: Type.Optional(PositiveMoney),
    outcome: Type.Optional(Type.String()),
    flagged: Type.Optional(Type.Boolean()),
    clearing: Type.Optional(NestedSigned('acquirer.clearing')),
    /** Refunds after clearing, in the order they were booked here. */
    refunds: Type.Optional(Type.Array(CustomerRefund, { maxItems: 1000 })),
  },
  closed,
);
export type TransactionStatus = Static<typeof TransactionStatus>;

/** A merchant as a wallet may show it before it asks for a deposit: vouched for by its own bank. */
export const MerchantCertificateResponse = Type.Object(
  { merchantId: MerchantIdT, operatorId: OperatorIdT, merchantCert: CertT, origins: Type.Array(OriginT) },
  closed,
);
export type MerchantCertificateResponse = Static<typeof MerchantCertificateResponse>;

export const RecordResponse = Type.Object(
  { transactionId: TradeHandleT, state: Type.String(), clearing: Type.Optional(NestedSigned('acquirer.clearing')) },
  closed,
);

/**
 * The answer to a batch of clearing information (`acquirer.clearings`): one result per item, in the
 * batch's order — applied (now or by an earlier copy), or refused with a catalogue error of its
 * own. One item's refusal never fails the others.
 */
export const ClearingsResponse = Type.Object(
  {
    results: Type.Array(
      Type.Union([
        Type.Object({ ok: Type.Object({ transactionId: TradeHandleT, state: Type.String({ maxLength: 20 }) }, closed) }, closed),
        Type.Object({ error: ErrorResponse.properties.error }, closed),
      ]),
      { maxItems: 100 },
    ),
  },
  closed,
);
export type ClearingsResponse = Static<typeof ClearingsResponse>;

/** How far a `merchant.statement`'s `time` may be from the operator's clock (either way). */
export const STATEMENT_WINDOW_MS = 5 * 60_000;

/** One deposit opened at the merchant, as its operator books it (merchant currency). */
export const StatementDeposit = Type.Object(
  {
    transactionId: TradeHandleT,
    /** open: reserved, not yet cleared; cleared: paid to the merchant; failed: never opened in full. */
    state: Type.Union([Type.Literal('open'), Type.Literal('cleared'), Type.Literal('failed')]),
    deposit: PositiveMoney,
    /** What the merchant was paid at clearing (null while open). The operator charges no fee on it. */
    charged: Type.Union([PositiveMoney, Type.Null()]),
    /** What went back to the customer's operator at clearing (null while open). */
    unused: Type.Union([PositiveMoney, Type.Null()]),
    /** Purchases counted at clearing (null while open). */
    count: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    outcome: Type.Union([Type.String(), Type.Null()]),
    flagged: Type.Union([Type.Boolean(), Type.Null()]),
    openedAt: TimeT,
    clearedAt: Type.Union([TimeT, Type.Null()]),
  },
  closed,
);
export type StatementDeposit = Static<typeof StatementDeposit>;

/**
 * A merchant's statement from its operator. `balance` is what the operator owes the merchant: the
 * sum of what its cleared deposits paid (the operator makes no payouts through Obol, so nothing
 * has been taken from it); `reserved` is what open deposits hold for it, not yet earned.
 */
export const MerchantStatement = Type.Object(
  {
    merchantId: MerchantIdT,
    operatorId: OperatorIdT,
    time: TimeT,
    balances: Type.Array(
      Type.Object(
        {
          currency: Type.String({ pattern: '^[A-Z]{3}$' }),
          balance: Money,
          reserved: PositiveMoney,
          openDeposits: Type.Integer({ minimum: 0 }),
          clearedDeposits: Type.Integer({ minimum: 0 }),
        },
        closed,
      ),
    ),
    /** The deposits opened since the request's `since`, newest first, at most its `limit` (default 100). */
    deposits: Type.Array(StatementDeposit),
  },
  closed,
);
export type MerchantStatement = Static<typeof MerchantStatement>;

// ── operator: administration ───────────────────────────────────────────────────────────────
export const RegisterMerchantRequest = Type.Object(
  {
    merchantId: MerchantIdT,
    publicKey: SpkiT,
    origins: Type.Array(OriginT, { minItems: 1, maxItems: 16 }),
    /** Where the merchant module is mounted, e.g. http://127.0.0.1:7300/obol */
    url: Type.String({ maxLength: 255 }),
    name: Type.Optional(Type.String({ maxLength: 80 })),
  },
  closed,
);
export const RegisterMerchantResponse = Type.Object(
  { merchantId: MerchantIdT, merchantCert: CertT, operatorCert: CertT, signingCert: CertT, rootCert: CertT },
  closed,
);
export const FundRequest = Type.Object({ customerId: Type.String(), amount: PositiveMoney }, closed);
export const CreditLimitRequest = Type.Object({ accountId: Type.String(), limit: PositiveMoney }, closed);

// ── merchant module (mounted by a shop, e.g. at /obol) ─────────────────────────────────────
export const MerchantPaths = {
  merchant: '/merchant',
  info: '/info',
  /** The catalogue: every product with its signed description. */
  products: '/products',
  /** One product's signed description (`Signed<'merchant.description'>`), fetched before ordering. */
  product: '/products/:productId',
  order: '/order',
  accept: '/accept',
  stop: '/stop',
  /**
   * A trading session: only for its wallet (a signed `wallet.sessionRead`, see
   * `sessionReadAuthorization`) or the shop's administration (bearer shop admin token).
   */
  session: '/sessions/:transactionId',
  /** A purchase delivered again, without a charge, to the wallet that proves it (a signed `wallet.redeliver`). */
  redeliver: '/redeliver',
  /** The shop's own administration (bearer shop admin token): add a product. */
  adminProducts: '/admin/products',
  /** The shop's own administration (bearer shop admin token): refund a cleared transaction (`RefundRequest`). */
  adminRefunds: '/admin/refunds',
  /** The shop's own administration (bearer shop admin token): its sales by product and day. */
  adminSales: '/admin/sales',
  /** The widget's one script, served by the module so the page's script tag points at it. */
  widget: '/obol-widget.js',
  /** The shop's sales dashboard (a page that asks for the shop admin token), its script and style. */
  dashboard: '/admin/',
  dashboardScript: '/admin/dashboard.js',
  dashboardStyle: '/admin/dashboard.css',
  /** `/admin` without the slash: a redirect to the dashboard. */
  adminRedirect: '/admin',
  /** The module's OpenAPI 3.1 document (request and response bodies of every route). */
  openapi: '/openapi.json',
} as const;

/**
 * How a wallet proves it may read a session: `authorization: Obol-Session <token>`, the token
 * being the signed `wallet.sessionRead` as base64url of its JSON (a header, so the read stays a
 * GET). The shop's administration uses `authorization: Bearer <shop admin token>` instead.
 */
export const SESSION_READ_SCHEME = 'Obol-Session';
/** How far a session read's `time` may be from the merchant's clock (either way). */
export const SESSION_READ_WINDOW_MS = 5 * 60_000;
/** Largest token read from the header: a signed read is about 300 characters. */
const SESSION_READ_MAX_TOKEN = 2048;

export function sessionReadAuthorization(read: Signed<'wallet.sessionRead'>): string {
  return `${SESSION_READ_SCHEME} ${toBase64Url(utf8.encode(JSON.stringify(read)))}`;
}

/**
 * The signed message an `Obol-Session` authorization header carries, not yet verified; undefined
 * when the header is not one (no header, another scheme, not base64url JSON).
 */
export function sessionReadFromAuthorization(header: string | undefined): unknown {
  const prefix = `${SESSION_READ_SCHEME} `;
  if (!header?.startsWith(prefix)) return undefined;
  const token = header.slice(prefix.length).trim();
  if (token.length === 0 || token.length > SESSION_READ_MAX_TOKEN || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  try {
    return JSON.parse(utf8.decode(fromBase64Url(token))) as unknown;
  } catch {
    return undefined;
  }
}

/** A trading session as the merchant shows it to its wallet and to the shop's administration (never K1). */
export const MerchantSessionView = Type.Object(
  {
    /** The merchant knows the transaction by its trade handle only. */
    transactionId: TradeHandleT,
    state: Type.Union([Type.Literal('open'), Type.Literal('closing'), Type.Literal('reported'), Type.Literal('cleared')]),
    closeReason: Type.Union([Type.Literal('wallet'), Type.Literal('merchant'), Type.Literal('deposit-used'), Type.Literal('timer'), Type.Null()]),
    pseudonym: Type.String(),
    deposit: PositiveMoney,
    spent: PositiveMoney,
    remaining: PositiveMoney,
    count: Type.Integer({ minimum: 0 }),
    expiresAt: TimeT,
    report: Type.Union([
      Type.Object(
        {
          msgId: Type.String(),
          sent: Type.Boolean(),
          attempts: Type.Integer({ minimum: 0 }),
          operatorState: Type.Union([Type.String(), Type.Null()]),
          lastError: Type.Union([Type.String(), Type.Null()]),
        },
        closed,
      ),
      Type.Null(),
    ]),
  },
  closed,
);
export type MerchantSessionView = Static<typeof MerchantSessionView>;

export const MerchantPublicInfo = Type.Object(
  {
    merchantId: MerchantIdT,
    name: Type.String(),
    operatorId: OperatorIdT,
    operatorUrl: Type.String(),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    origins: Type.Array(OriginT),
  },
  closed,
);
export type MerchantPublicInfo = Static<typeof MerchantPublicInfo>;

/** A product as the shop lists it: plain fields for pages, and the description the merchant signed. */
export const ProductListing = Type.Object(
  {
    productId: ProductIdT,
    title: Type.String(),
    description: Type.String(),
    price: PositiveMoney,
    contentType: Type.String(),
    signedDescription: NestedSigned('merchant.description'),
  },
  closed,
);
export type ProductListing = Static<typeof ProductListing>;
export const ProductsResponse = Type.Object({ products: Type.Array(ProductListing) }, closed);

export const OrderRequest = Type.Object({ order: NestedSigned('wallet.order') }, closed);
/**
 * FIG 4: the delivery of purchase n, before it is accepted (and so before it is charged): the
 * product encrypted with its K2, the merchant's signature over it, and the signed description.
 */
export const OrderResponse = Type.Object(
  {
    transactionId: TradeHandleT,
    n: Type.Integer({ minimum: 1 }),
    productId: ProductIdT,
    price: PositiveMoney,
    product: NestedSigned('merchant.product'),
    description: NestedSigned('merchant.description'),
    /** The ciphertext, base64url; its SHA-256 is the signed `ciphertextHash`. */
    ciphertext: B64u(MAX_CIPHERTEXT_B64),
  },
  closed,
);
export const AcceptRequest = Type.Object({ accept: NestedSigned('wallet.accept') }, closed);
/** The purchase is charged; `key` is sign_M([K2]^K1), the same one however often the accept is replayed. */
export const AcceptResponse = Type.Object(
  {
    transactionId: TradeHandleT,
    n: Type.Integer(),
    charged: PositiveMoney,
    remaining: PositiveMoney,
    key: NestedSigned('merchant.key'),
  },
  closed,
);

export const RedeliverRequest = Type.Object({ redeliver: NestedSigned('wallet.redeliver') }, closed);
/**
 * A purchase delivered again (issue 14): the same ciphertext as the first time (the version that
 * was accepted, by its hash) and the same sign_M([K2]^K1) the merchant answered the accept with.
 * Nothing is encrypted, signed or charged for it; only the K1 holder can open it.
 */
export const RedeliverResponse = Type.Object(
  {
    transactionId: TradeHandleT,
    n: Type.Integer({ minimum: 1 }),
    productId: ProductIdT,
    /** The ciphertext, base64url; its SHA-256 is the `ciphertextHash` the merchant signed when it was delivered. */
    ciphertext: B64u(MAX_CIPHERTEXT_B64),
    key: NestedSigned('merchant.key'),
  },
  closed,
);

/** The shop's administration: add a product (encrypted and signed once, here). */
export const AddProductRequest = Type.Object(
  {
    productId: ProductIdT,
    title: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 4000 }),
    price: PositiveMoney,
    contentType: Type.String({ minLength: 3, maxLength: 100 }),
    /** The product's bytes, base64url. */
    content: Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: MAX_CIPHERTEXT_B64 }),
    /** Replace a product of the same id that differs (a new K2 and new signatures); otherwise CONFLICT. */
    replace: Type.Optional(Type.Boolean()),
  },
  closed,
);
/**
 * The shop's administration: refund (part of) a purchase — a refund line while its session is
 * open (before clearing), else through the shop's operator after clearing.
 * `refundId` makes a retry the same refund (the module makes one when it is left out).
 */
export const RefundRequest = Type.Object(
  {
    transactionId: TradeHandleT,
    amount: PositiveMoney,
    refundId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' })),
    /**
     * The purchase refunded, while the session is still open (a refund line before clearing); left
     * out, the latest purchase that still has room for the amount. Ignored after clearing.
     */
    n: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  closed,
);
/** What the shop's administration is told of a refund: the operator's signed refund, its figures. */
export const RefundResponse = Type.Object(
  {
    refundId: Type.String(),
    transactionId: TradeHandleT,
    n: Type.Integer({ minimum: 1 }),
    amount: PositiveMoney,
    refundedTotal: PositiveMoney,
    /** After clearing: the operator's signed refund. */
    refund: Type.Optional(NestedSigned('acquirer.refund')),
    /**
     * Before clearing (the session still open): the merchant's signed refund line for purchase `n`;
     * `refundedTotal` is then every refund line of the session, which its record subtracts.
     */
    line: Type.Optional(NestedSigned('merchant.refundLine')),
  },
  closed,
);
export type RefundResponse = Static<typeof RefundResponse>;

/** A product as the shop's administration sees it (never K2). */
export const ProductView = Type.Object(
  {
    productId: ProductIdT,
    title: Type.String(),
    price: PositiveMoney,
    contentType: Type.String(),
    /** Plaintext bytes. */
    size: Type.Integer(),
    contentHash: HashT,
    ciphertextHash: HashT,
    descriptionHash: HashT,
    /** 'added', 'replaced', or 'unchanged' (the same product was already there: nothing was made). */
    result: Type.Union([Type.Literal('added'), Type.Literal('replaced'), Type.Literal('unchanged')]),
    createdAt: TimeT,
  },
  closed,
);
export type ProductView = Static<typeof ProductView>;
export const StopRequest = Type.Object({ stop: NestedSigned('wallet.stop') }, closed);
export const StopResponse = Type.Object(
  {
    transactionId: TradeHandleT,
    state: Type.String(),
    total: PositiveMoney,
    count: Type.Integer(),
    /** The merchant's refund lines before clearing (issue 14): its record's total is `total` minus them. */
    refundLines: Type.Optional(Type.Array(NestedSigned('merchant.refundLine'), { maxItems: 1000 })),
  },
  closed,
);

// ── arbiter (FIG 4 disputes) ────────────────────────────────────────────────────────────────
export const ArbiterPaths = {
  health: '/healthz',
  /** POST an evidence bundle (`EvidenceBundle`), get the arbiter's report. */
  judge: '/v1/judge',
  /** The arbiter's OpenAPI 3.1 document. */
  openapi: '/openapi.json',
} as const;

export const Pseudonym = B64u(64);
export { Money, PositiveMoney };
