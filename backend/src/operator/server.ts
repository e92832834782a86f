import { OperatorPaths } from '@obol/protocol/api';
import { OperatorRouteSchemas } from '@obol/protocol/routeSchemas';
import { type Clock, systemClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import type { Http } from '@obol/protocol/http';
import { KeyRing, importPublicKey } from '@obol/protocol/keys';
import { serverCrypto } from '../crypto/nodeCrypto.ts';
import Fastify, { type FastifyInstance } from 'fastify';
import { BillingDispatcher, type BillingSink, JsonlFileSink, WebhookSink } from '../billing/index.ts';
import { browserCors } from '../http/cors.ts';
import { installErrorHandler } from '../http/errors.ts';
import { describeRoutes } from '../http/openapi.ts';
import { AdminGuard, RateLimiter } from '../http/rateLimit.ts';
import { trustServerCas, undiciHttp } from '../http/client.ts';
import { type ServerLimits, obolServerOptions } from '../http/serverOptions.ts';
import { loadTls, operatorChainPem } from '../http/tls.ts';
import { type Db, openDb } from '../store/db.ts';
import { Ledger } from '../store/ledger.ts';
import { migrate } from '../store/migrate.ts';
import { DATA_KEY_FILE, type SealKeys, loadOrCreateSealKeys, resealColumn } from '../store/sealedColumn.ts';
import { ACQ_K1_COLUMN } from './acquirer.ts';
import { AccountManagerAgent } from './accountManagerAgent.ts';
import { AcquirerAgent } from './acquirerAgent.ts';
import { accountManagerRoutes } from './routes/accountManager.ts';
import { acquirerRoutes } from './routes/acquirer.ts';
import { refundRoutes } from './routes/refunds.ts';
import { admin } from './admin.ts';
import { type OperatorConfig, publicUrlOf, rateLimitsOf } from './config.ts';
import { type OperatorContext, silentLog } from './context.ts';
import { ExchangeTables } from './exchangeTables.ts';
import type { OperatorIdentity } from './identity.ts';
import { PeerDirectory } from './peers.ts';

export interface OperatorServer {
  app: FastifyInstance;
  ctx: OperatorContext;
  /**
   * The operator's two roles, each step callable directly (tests, the simulator). Both work
   * through `ctx`: hand it another `http` to put a fault between this operator and its peers.
   */
  accountManager: AccountManagerAgent;
  acquirer: AcquirerAgent;
  billing: BillingDispatcher;
  url: string;
  close(): Promise<void>;
}

export interface StartOperatorOptions {
  config: OperatorConfig;
  identity: OperatorIdentity;
  clock?: Clock;
  /** An already open database (tests share one per file); otherwise opened from the config. */
  db?: Db;
  /** Run the deadline and billing timers (off in tests, which call them with a moved clock). */
  timers?: boolean;
  logger?: boolean;
  /**
   * Where the log lines go, one JSON line per call (pino), instead of stdout: a test reads what
   * the operator wrote (e.g. to check it never logs what a shopper bought). Implies logging on.
   */
  logStream?: { write(line: string): void };
  sinks?: BillingSink[];
  /** Time limits on slow clients (default: DEFAULT_LIMITS). */
  limits?: ServerLimits;
  /**
   * The data key(s) that seal secrets in the database (K1). Default: `data.key.json` in the
   * configuration's `keyDir` (made when missing). A setup with no key folder (in-memory tests)
   * must hand its keys here; several processes of one operator share one key.
   */
  sealKeys?: SealKeys;
  /** How the operator calls its peers and its merchants (default: undici over the network). */
  http?: Http;
  /**
   * Do not listen: the operator is reached at this base URL through a transport that hands
   * requests to `app.inject()` (the reliability simulator's network). Default: listen on the
   * configured port.
   */
  unlistenedUrl?: string;
}

/** What a wallet calls of its operator (and of the merchant's operator: the certificate). */
const WALLET_ROUTES = [
  `GET ${OperatorPaths.health}`,
  `GET ${OperatorPaths.info}`,
  `GET ${OperatorPaths.exchangeTable}`,
  `POST ${OperatorPaths.registerCustomer}`,
  `POST ${OperatorPaths.challenge}`,
  `POST ${OperatorPaths.login}`,
  `GET ${OperatorPaths.balance}`,
  `POST ${OperatorPaths.demoTopUp}`,
  `POST ${OperatorPaths.initiate}`,
  `POST ${OperatorPaths.customerRecord}`,
  `GET ${OperatorPaths.transaction}`,
  `GET ${OperatorPaths.refunds}`,
  `GET ${OperatorPaths.merchantCertificate}`,
];

/**
 * Rate limits per client on what a script could flood (config `rateLimits`, DEFAULT_RATE_LIMITS):
 * the wallet routes get an `onRequest` hook as they are added (registration; challenges and
 * logons sharing one budget; demo top-ups); administration gets its guard (calls and wrong-token
 * lockout), which the admin plugin runs before its token check.
 */
function limitRoutes(app: FastifyInstance, config: OperatorConfig, clock: Clock): AdminGuard {
  const limits = rateLimitsOf(config);
  const registration = new RateLimiter(limits.registration, clock, limits.maxClients).hook('registrations');
  const logon = new RateLimiter(limits.logon, clock, limits.maxClients).hook('logon attempts');
  const topUp = new RateLimiter(limits.topUp, clock, limits.maxClients).hook('top-ups');
  const limited: ReadonlyMap<string, typeof registration> = new Map([
    [`POST ${OperatorPaths.registerCustomer}`, registration],
    [`POST ${OperatorPaths.challenge}`, logon],
    [`POST ${OperatorPaths.login}`, logon],
    [`POST ${OperatorPaths.demoTopUp}`, topUp],
  ]);
  app.addHook('onRoute', (route) => {
    const hook = typeof route.method === 'string' ? limited.get(`${route.method} ${route.url}`) : undefined;
    if (!hook) return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    // First, so a refused request costs no schema check, signature or database read.
    route.onRequest = [hook, ...own];
  });
  return new AdminGuard({ calls: limits.admin, lockout: limits.adminLockout, clock, maxClients: limits.maxClients });
}

/**
 * One operator: account manager and acquirer in one Fastify server, on its own database.
 * Listens first (to learn the port), then serves.
 */
export async function startOperator(opts: StartOperatorOptions): Promise<OperatorServer> {
  const { config, identity } = opts;
  const clock = opts.clock ?? systemClock;
  // Arbiters' keys are checked before anything starts: a typo must not surface in a dispute.
  for (const [name, spki] of Object.entries(config.arbiters ?? {})) {
    await importPublicKey(spki).catch(() => {
      throw new ObolError('MALFORMED', `arbiter ${name}: the key is not a P-256 public key (SPKI, base64url)`);
    });
  }
  const db = opts.db ?? (await openDb({ databaseUrl: config.databaseUrl ?? process.env.DATABASE_URL, dataDir: config.dataDir }));
  await migrate(db);
  const sealKeys = opts.sealKeys ?? (config.keyDir ? await loadOrCreateSealKeys(config.keyDir) : undefined);
  if (!sealKeys) {
    throw new ObolError('MALFORMED', `operator ${config.operatorId}: no data key — set keyDir (its ${DATA_KEY_FILE} is made when missing) or pass sealKeys`);
  }
  // K1 of rows from before sealing (or sealed under a rotated-out key) is sealed under the current key before we serve.
  await resealColumn(db, sealKeys, 'acq_transactions', 'id', 'k1_sealed', ACQ_K1_COLUMN);
  const ledger = new Ledger(db, clock);

  const sinks: BillingSink[] = opts.sinks ?? [];
  if (!opts.sinks) {
    if (config.billing?.jsonlFile) sinks.push(new JsonlFileSink(config.billing.jsonlFile));
    if (config.billing?.webhook) sinks.push(new WebhookSink({ url: config.billing.webhook.url, secret: config.billing.webhook.secret, clock }));
  }

  const ctx: OperatorContext = {
    config,
    identity,
    url: '', // known once listening (port 0 in tests)
    db,
    ledger,
    clock,
    http: opts.http ?? undiciHttp,
    peers: new PeerDirectory(identity, { ...config.peers }, clock, opts.http ?? undiciHttp),
    tables: new ExchangeTables(db, identity.key, clock, config.operatorId, config.currency, config.rates, (config.tableLifetimeSec ?? 3600) * 1000),
    keys: new KeyRing(serverCrypto),
    crypto: serverCrypto,
    sealKeys,
    billingSinks: sinks.map((s) => s.name),
    clearingGraceMs: (config.clearingGraceSec ?? 300) * 1000,
    log: silentLog, // the server's logger, once it exists (below)
  };

  const logger = opts.logStream ? { level: 'trace', stream: opts.logStream } : (opts.logger ?? process.env.OBOL_LOG === '1');
  const tls = config.tls ? await loadTls(config.tls) : undefined;
  // With TLS on, our peers (the other operators, under the same interbank root) are reached over
  // HTTPS too: the peer client trusts the root's chain besides the usual public roots.
  if (tls) trustServerCas([operatorChainPem(identity)]);
  const app = Fastify(
    obolServerOptions({
      logger,
      bodyLimit: 1_048_576,
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(tls ? { tls } : {}),
    }),
  );
  ctx.log = app.log;
  // Billing deliveries log through the server's (pino) logger, like everything else.
  const billing = new BillingDispatcher({ db, sinks, clock, logger: app.log });
  installErrorHandler(app);
  await describeRoutes(app, {
    title: `Obol operator ${config.operatorId}`,
    description: 'Account manager and acquirer of one Obol operator.',
    schemas: OperatorRouteSchemas,
  });
  app.decorate('obol', ctx);
  const adminGuard = limitRoutes(app, config, clock);
  // Wallets call from an extension's service worker (CORS on their routes only, cors.ts);
  // administration, the peer routes and the acquirer's merchant routes get none.
  browserCors(app, WALLET_ROUTES);
  app.get(OperatorPaths.health, async () => ({ ok: true, operatorId: config.operatorId }));
  app.get(OperatorPaths.openapi, async () => app.swagger());
  app.get(OperatorPaths.info, async () => ({
    operatorId: config.operatorId,
    name: config.name,
    currency: config.currency,
    url: ctx.url,
    operatorCert: identity.certB64,
    signingCert: identity.signingCertB64,
    rootCert: identity.rootB64,
    demo: config.demo ?? false,
  }));
  const accountManager = new AccountManagerAgent(ctx);
  const acquirer = new AcquirerAgent(ctx);
  await app.register(accountManagerRoutes, { agent: accountManager });
  await app.register(acquirerRoutes, { agent: acquirer });
  await app.register(refundRoutes, { accountManager, acquirer });
  await app.register(admin, { guard: adminGuard });

  if (opts.unlistenedUrl !== undefined) {
    await app.ready();
    ctx.url = opts.unlistenedUrl;
  } else {
    await app.listen({ port: config.port, host: config.host ?? '127.0.0.1' });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    ctx.url = publicUrlOf(config, port);
  }
  // We are our own peer: a shopper and a merchant of the same operator take the same path.
  ctx.peers.addPeerUrl(config.operatorId, ctx.url);

  const timers: NodeJS.Timeout[] = [];
  if (opts.timers !== false) {
    billing.start(2_000);
    timers.push(
      setInterval(() => {
        acquirer.settleDeadlines().catch((err) => app.log.error({ err }, 'settling deadlines failed'));
        accountManager.releaseStalledInitiations().catch((err) => app.log.error({ err }, 'releasing stalled initiations failed'));
      }, 5_000),
    );
  }
  return {
    app,
    ctx,
    accountManager,
    acquirer,
    billing,
    url: ctx.url,
    close: async () => {
      for (const t of timers) clearInterval(t);
      await billing.stop();
      await app.close();
      for (const sink of sinks) await sink.close?.();
      if (!opts.db) await db.close();
    },
  };
}
