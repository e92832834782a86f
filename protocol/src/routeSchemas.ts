import Type, { type TSchema } from 'typebox';
import { EvidenceBundle } from './evidence.ts';
import {
  AcceptRequest,
  ArbiterPaths,
  AcceptResponse,
  AddProductRequest,
  BalanceResponse,
  ChallengeRequest,
  ChallengeResponse,
  ClearingsResponse,
  CreditLimitRequest,
  DemoTopUpRequest,
  ErrorResponse,
  FundRequest,
  LoginResponse,
  MerchantCertificateResponse,
  MerchantPaths,
  MerchantPublicInfo,
  MerchantSessionView,
  MerchantStatement,
  OperatorInfo,
  OperatorPaths,
  OrderRequest,
  OrderResponse,
  ProductView,
  ProductsResponse,
  RedeliverRequest,
  RefundRequest,
  RefundResponse,
  RefundsResponse,
  RedeliverResponse,
  RecordResponse,
  RegisterCustomerRequest,
  RegisterCustomerResponse,
  RegisterMerchantRequest,
  RegisterMerchantResponse,
  StopRequest,
  StopResponse,
  TransactionStatus,
} from './api.ts';
import { B64u, CertT, MerchantIdT, MessageSchemas, type MessageType, Money, OperatorIdT, PositiveMoney, ProductIdT, TradeHandleT, TransactionIdT } from './messages.ts';

/**
 * What every HTTP route takes and answers, per route (`METHOD path`, the path as in OperatorPaths
 * and MerchantPaths): its body, path parameters, query and headers, and its answer per status —
 * the error body of the catalogue for every 4xx and 5xx. The servers attach these to their routes
 * (so `/openapi.json` describes bodies, not just paths) and a test checks real traffic against the
 * document. They describe; the handlers check (checkSchema, verifyMessage), as before.
 */
export interface RouteSchema {
  summary: string;
  tags?: string[];
  body?: TSchema;
  params?: TSchema;
  querystring?: TSchema;
  headers?: TSchema;
  /** Media types of the answer, when it is not JSON. */
  produces?: string[];
  response: Record<string, TSchema>;
}

const closed = { additionalProperties: false } as const;

/** A signed message as it travels: the envelope with the body of its type (signed.ts). */
export const SignedMessageT = <T extends MessageType>(type: T) =>
  Type.Object(
    {
      v: Type.Literal(1),
      type: Type.Literal(type),
      kid: Type.String({ minLength: 1, maxLength: 64 }),
      body: MessageSchemas[type],
      sig: B64u(200),
    },
    { ...closed, description: `Signed<'${type}'>` },
  );

const errors = { '4xx': ErrorResponse, '5xx': ErrorResponse };
const ok = (schema: TSchema) => ({ 200: schema, ...errors });

/** `authorization: Bearer <token>`: the admin token, a wallet's logon token, or the shop's admin token. */
const bearer = Type.Object({ authorization: Type.String({ pattern: '^Bearer .+', maxLength: 1024 }) });
/** Administration calls that change something: bearer admin token, and an optional `Idempotency-Key`. */
const adminChange = Type.Object({
  authorization: Type.String({ pattern: '^Bearer .+', maxLength: 1024 }),
  'idempotency-key': Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,255}$' })),
});

const HealthResponse = Type.Object({ ok: Type.Boolean(), operatorId: OperatorIdT }, closed);
const OpenApiDocument = Type.Object({ openapi: Type.String() }, { additionalProperties: true });
const PeerMerchantResponse = Type.Object({ merchantId: MerchantIdT, merchantCert: CertT }, closed);
const ClearingApplied = Type.Object({ transactionId: TradeHandleT, state: Type.String() }, closed);
const FundResponse = Type.Object({ account: Type.String(), balance: Money }, closed);
const CreditLimitResponse = Type.Object({ account: Type.String(), creditLimit: Money }, closed);
const BalancesResponse = Type.Array(Type.Object({ account: Type.String(), kind: Type.String(), balance: Money }, closed));
const AuditResponse = Type.Object(
  {
    ok: Type.Boolean(),
    perCurrency: Type.Array(Type.Object({ currency: Type.String(), sum: Money }, closed)),
    underLimit: Type.Array(Type.String()),
    balanceMismatches: Type.Array(Type.String()),
    unbalancedMovements: Type.Array(Type.String()),
    /** Refunds after clearing booked other than their records say, or beyond what was paid. */
    refundProblems: Type.Array(Type.String()),
  },
  closed,
);
const PositionsResponse = Type.Array(Type.Object({ operatorId: OperatorIdT, position: Money }, closed));
const count = Type.Integer({ minimum: 0 });
const SettleDeadlinesResponse = Type.Object(
  { settled: count, failed: count, resent: count, refused: count, releasedInitiations: count },
  closed,
);

/** The shop's sales (merchant/sales.ts): accepted purchases by product and by day, sessions by state. */
export const SalesLineT = Type.Object({ key: Type.String(), purchases: count, amount: PositiveMoney }, closed);
export const SalesReportT = Type.Object(
  {
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    purchases: count,
    total: PositiveMoney,
    byProduct: Type.Array(SalesLineT),
    byDay: Type.Array(SalesLineT),
    sessions: Type.Array(Type.Object({ state: Type.String(), count, deposits: PositiveMoney, spent: PositiveMoney }, closed)),
  },
  closed,
);

const tag = (t: string) => ({ tags: [t] });

export const OperatorRouteSchemas: Record<string, RouteSchema> = {
  [`GET ${OperatorPaths.health}`]: { summary: 'Liveness', ...tag('public'), response: ok(HealthResponse) },
  [`GET ${OperatorPaths.openapi}`]: { summary: 'This document (OpenAPI 3.1)', ...tag('public'), response: ok(OpenApiDocument) },
  [`GET ${OperatorPaths.info}`]: { summary: 'Who this operator is: id, currency, certificates', ...tag('public'), response: ok(OperatorInfo) },
  [`GET ${OperatorPaths.exchangeTable}`]: {
    summary: 'The current exchange table, signed',
    ...tag('wallet'),
    response: ok(SignedMessageT('operator.exchangeTable')),
  },
  [`POST ${OperatorPaths.registerCustomer}`]: {
    summary: 'Register a wallet (its long-term public key)',
    ...tag('wallet'),
    body: RegisterCustomerRequest,
    response: ok(RegisterCustomerResponse),
  },
  [`POST ${OperatorPaths.challenge}`]: { summary: 'A logon challenge', ...tag('wallet'), body: ChallengeRequest, response: ok(ChallengeResponse) },
  [`POST ${OperatorPaths.login}`]: { summary: 'Log on: the challenge signed with the long-term key', ...tag('wallet'), body: SignedMessageT('wallet.login'), response: ok(LoginResponse) },
  [`GET ${OperatorPaths.balance}`]: { summary: 'The wallet’s balance (logon token)', ...tag('wallet'), headers: bearer, response: ok(BalanceResponse) },
  [`POST ${OperatorPaths.demoTopUp}`]: {
    summary: 'Top up the wallet (demo operators only; logon token)',
    ...tag('wallet'),
    headers: bearer,
    body: DemoTopUpRequest,
    response: ok(BalanceResponse),
  },
  [`POST ${OperatorPaths.initiate}`]: {
    summary: 'FIG 2 step 2: open a deposit at a merchant',
    ...tag('wallet'),
    body: SignedMessageT('wallet.initiate'),
    response: ok(SignedMessageT('am.ack')),
  },
  [`POST ${OperatorPaths.customerRecord}`]: {
    summary: 'FIG 3 step 8: the customer transaction record',
    ...tag('wallet'),
    body: SignedMessageT('wallet.record'),
    response: ok(RecordResponse),
  },
  [`GET ${OperatorPaths.transaction}`]: {
    summary: 'How one of the wallet’s transactions ended (logon token)',
    ...tag('wallet'),
    headers: bearer,
    params: Type.Object({ transactionId: TransactionIdT }),
    response: ok(TransactionStatus),
  },
  [`GET ${OperatorPaths.merchantCertificate}`]: {
    summary: 'A merchant’s certificate, re-issued by this operator, before any deposit',
    ...tag('wallet'),
    params: Type.Object({ operatorId: OperatorIdT, merchantId: MerchantIdT }),
    response: ok(MerchantCertificateResponse),
  },
  [`POST ${OperatorPaths.merchantRecord}`]: {
    summary: 'FIG 3 step 9: the merchant transaction record',
    ...tag('merchant'),
    body: SignedMessageT('merchant.record'),
    response: ok(RecordResponse),
  },
  [`POST ${OperatorPaths.merchantStatement}`]: {
    summary: 'A merchant’s own statement: balance and deposits (signed with its key, fresh, once)',
    ...tag('merchant'),
    body: SignedMessageT('merchant.statement'),
    response: ok(MerchantStatement),
  },
  [`POST ${OperatorPaths.peerInitiate}`]: {
    summary: 'FIG 2 step 3: the customer’s operator vouches for a deposit',
    ...tag('peer'),
    body: SignedMessageT('am.initiate'),
    response: ok(SignedMessageT('acquirer.ack')),
  },
  [`POST ${OperatorPaths.merchantRefund}`]: {
    summary: 'A merchant refunds (part of) a cleared transaction (signed with its key; idempotent by refundId)',
    ...tag('merchant'),
    body: SignedMessageT('merchant.refund'),
    response: ok(SignedMessageT('acquirer.refund')),
  },
  [`POST ${OperatorPaths.peerRefund}`]: {
    summary: 'A refund, from the merchant’s operator to the customer’s (credited at the pinned rate, once)',
    ...tag('peer'),
    body: SignedMessageT('acquirer.refund'),
    response: ok(Type.Object({ transactionId: Type.String({ maxLength: 200 }), n: Type.Integer({ minimum: 1 }), amount: Money }, closed)),
  },
  [`GET ${OperatorPaths.refunds}`]: { summary: 'Refunds to the wallet’s customer (logon token)', ...tag('wallet'), headers: bearer, response: ok(RefundsResponse) },
  [`POST ${OperatorPaths.peerCustomerRecord}`]: {
    summary: 'FIG 3 step 8, forwarded to the acquirer',
    ...tag('peer'),
    body: SignedMessageT('am.customerRecord'),
    response: ok(RecordResponse),
  },
  [`POST ${OperatorPaths.peerClearing}`]: {
    summary: 'FIG 3 step 10: clearing information from the acquirer',
    ...tag('peer'),
    body: SignedMessageT('acquirer.clearing'),
    response: ok(ClearingApplied),
  },
  [`POST ${OperatorPaths.peerClearings}`]: {
    summary: 'FIG 3 step 10 for many transactions: a signed batch of clearing information, answered item by item',
    ...tag('peer'),
    body: SignedMessageT('acquirer.clearings'),
    response: ok(ClearingsResponse),
  },
  [`GET ${OperatorPaths.peerMerchant}`]: {
    summary: 'A merchant’s certificate, for other operators',
    ...tag('peer'),
    params: Type.Object({ merchantId: MerchantIdT }),
    response: ok(PeerMerchantResponse),
  },
  [`POST ${OperatorPaths.arbiterKey}`]: {
    summary: 'FIG 4 disputes: K1 of a transaction, to an arbiter this operator trusts',
    ...tag('arbiter'),
    body: SignedMessageT('arbiter.keyRequest'),
    response: ok(SignedMessageT('acquirer.keyRelease')),
  },
  [`POST ${OperatorPaths.adminMerchants}`]: {
    summary: 'Register (or re-register) a merchant',
    ...tag('admin'),
    headers: adminChange,
    body: RegisterMerchantRequest,
    response: ok(RegisterMerchantResponse),
  },
  [`POST ${OperatorPaths.adminFund}`]: { summary: 'Fund a customer', ...tag('admin'), headers: adminChange, body: FundRequest, response: ok(FundResponse) },
  [`POST ${OperatorPaths.adminCreditLimit}`]: {
    summary: 'Set an account’s credit limit',
    ...tag('admin'),
    headers: adminChange,
    body: CreditLimitRequest,
    response: ok(CreditLimitResponse),
  },
  [`GET ${OperatorPaths.adminBalances}`]: { summary: 'Every account’s balance and every open deposit', ...tag('admin'), headers: bearer, response: ok(BalancesResponse) },
  [`GET ${OperatorPaths.adminAudit}`]: { summary: 'The ledger’s audit', ...tag('admin'), headers: bearer, response: ok(AuditResponse) },
  [`GET ${OperatorPaths.adminPositions}`]: { summary: 'Net positions with other operators', ...tag('admin'), headers: bearer, response: ok(PositionsResponse) },
  [`POST ${OperatorPaths.adminSettleDeadlines}`]: {
    summary: 'Run the FIG 3 deadlines now',
    ...tag('admin'),
    headers: adminChange,
    response: ok(SettleDeadlinesResponse),
  },
};

/** The merchant module's routes, relative to where the shop mounts it (e.g. /obol). */
export const MerchantRouteSchemas: Record<string, RouteSchema> = {
  [`GET ${MerchantPaths.openapi}`]: { summary: 'This document (OpenAPI 3.1)', ...tag('public'), response: ok(OpenApiDocument) },
  [`GET ${MerchantPaths.merchant}`]: { summary: 'Who this merchant is', ...tag('public'), response: ok(MerchantPublicInfo) },
  [`GET ${MerchantPaths.products}`]: { summary: 'The catalogue, each product with its signed description', ...tag('public'), response: ok(ProductsResponse) },
  [`GET ${MerchantPaths.product}`]: {
    summary: 'One product’s signed description',
    ...tag('public'),
    params: Type.Object({ productId: ProductIdT }),
    response: ok(SignedMessageT('merchant.description')),
  },
  [`GET ${MerchantPaths.session}`]: {
    summary: 'A trading session, to its wallet (Obol-Session) or the shop’s administration (Bearer)',
    ...tag('wallet'),
    params: Type.Object({ transactionId: TradeHandleT }),
    headers: Type.Object({ authorization: Type.String({ pattern: '^(Obol-Session|Bearer) .+', maxLength: 4096 }) }),
    response: ok(MerchantSessionView),
  },
  [`POST ${MerchantPaths.info}`]: {
    summary: 'FIG 2 step 4: the acquirer tells the merchant a deposit is there',
    ...tag('acquirer'),
    body: SignedMessageT('acquirer.info'),
    response: ok(SignedMessageT('merchant.ack')),
  },
  [`POST ${MerchantPaths.order}`]: { summary: 'FIG 4: order purchase n; its encrypted delivery', ...tag('wallet'), body: OrderRequest, response: ok(OrderResponse) },
  [`POST ${MerchantPaths.accept}`]: { summary: 'Accept purchase n; its key', ...tag('wallet'), body: AcceptRequest, response: ok(AcceptResponse) },
  [`POST ${MerchantPaths.redeliver}`]: {
    summary: 'Deliver again, without a charge, a purchase the wallet proves with its session key',
    ...tag('wallet'),
    body: RedeliverRequest,
    response: ok(RedeliverResponse),
  },
  [`POST ${MerchantPaths.stop}`]: { summary: 'End the trading session', ...tag('wallet'), body: StopRequest, response: ok(StopResponse) },
  [`POST ${MerchantPaths.adminProducts}`]: {
    summary: 'Add a product (shop admin token)',
    ...tag('admin'),
    headers: adminChange,
    body: AddProductRequest,
    response: ok(ProductView),
  },
  [`POST ${MerchantPaths.adminRefunds}`]: {
    summary: 'Refund (part of) a purchase: a refund line while its session is open, else through the shop’s operator after clearing (shop admin token)',
    ...tag('admin'),
    headers: bearer,
    body: RefundRequest,
    response: ok(RefundResponse),
  },
  [`GET ${MerchantPaths.adminSales}`]: {
    summary: 'The shop’s sales by product and day (shop admin token)',
    ...tag('admin'),
    headers: bearer,
    querystring: Type.Object({ days: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) }),
    response: ok(SalesReportT),
  },
  [`GET ${MerchantPaths.dashboard}`]: { summary: 'The shop’s sales dashboard (a page; it asks for the shop admin token)', ...tag('admin'), produces: ['text/html'], response: { 200: Type.String() } },
  [`GET ${MerchantPaths.dashboardScript}`]: { summary: 'The dashboard’s script', ...tag('admin'), produces: ['text/javascript'], response: { 200: Type.String() } },
  [`GET ${MerchantPaths.dashboardStyle}`]: { summary: 'The dashboard’s style sheet', ...tag('admin'), produces: ['text/css'], response: { 200: Type.String() } },
  [`GET ${MerchantPaths.adminRedirect}`]: { summary: 'To the dashboard', ...tag('admin'), response: { 302: Type.Null() } },
  [`GET ${MerchantPaths.widget}`]: { summary: 'The widget’s script', ...tag('public'), produces: ['text/javascript'], response: { 200: Type.String() } },
};


/** An arbiter's report (backend/src/arbiter/judge.ts `ArbiterReport`), as its HTTP endpoint answers it. */
const nullable = (schema: TSchema) => Type.Union([schema, Type.Null()]);
export const ArbiterReportT = Type.Object(
  {
    caseRef: Type.String(),
    verdict: Type.Union(['for-shopper', 'for-merchant', 'evidence-altered', 'key-not-delivered', 'cannot-judge'].map((v) => Type.Literal(v))),
    summary: Type.String(),
    presentedBy: Type.Union([Type.Literal('shopper'), Type.Literal('merchant')]),
    purchase: Type.Object(
      {
        transactionId: Type.String(),
        n: Type.Integer(),
        merchantId: Type.String(),
        merchantOperatorId: Type.String(),
        productId: Type.String(),
        price: Type.String(),
        cumulative: Type.String(),
        acceptedAt: Type.String(),
      },
      closed,
    ),
    promised: nullable(
      Type.Object(
        { productId: Type.String(), title: Type.String(), description: Type.String(), price: Type.String(), contentType: Type.String(), contentHash: Type.String() },
        closed,
      ),
    ),
    delivered: nullable(Type.Object({ size: Type.Integer(), contentHash: Type.String(), matchesPromise: Type.Boolean(), firstBytes: Type.String() }, closed)),
    signatures: Type.Array(
      Type.Object(
        {
          part: Type.Union(['description', 'encrypted product', 'accept', 'wrapped key', 'release of K1'].map((v) => Type.Literal(v))),
          signer: Type.String(),
          valid: Type.Boolean(),
          says: Type.String(),
        },
        closed,
      ),
    ),
    alterations: Type.Array(Type.String()),
    findings: Type.Array(Type.String()),
    k1ReleasedBy: nullable(Type.String()),
    judgedAt: Type.Integer({ minimum: 0 }),
  },
  closed,
);

export const ArbiterRouteSchemas: Record<string, RouteSchema> = {
  [`GET ${ArbiterPaths.health}`]: {
    summary: 'Liveness, and the arbiter’s key id',
    ...tag('public'),
    response: ok(Type.Object({ ok: Type.Boolean(), arbiter: Type.String() }, closed)),
  },
  [`GET ${ArbiterPaths.openapi}`]: { summary: 'This document (OpenAPI 3.1)', ...tag('public'), response: ok(OpenApiDocument) },
  [`POST ${ArbiterPaths.judge}`]: {
    summary: 'Judge a dispute from an evidence bundle: the report as data and in plain words',
    ...tag('disputes'),
    body: EvidenceBundle,
    response: ok(Type.Object({ report: ArbiterReportT, text: Type.String() }, closed)),
  },
};
