/**
 * The merchant module: what a shop mounts in its own Fastify server to sell through Obol.
 *
 *   await app.register(merchantModule, { prefix: '/obol', merchantId, name, key, merchantCert,
 *     operatorCert, operatorId, operatorUrl, currency, origins, catalogue, db, clock, adminToken,
 *     sealKeys: await loadOrCreateSealKeys('<the shop's key folder>') });   // K1, K2 sealed at rest
 *
 * Thin routing over `MerchantAgent` (the logic, in merchantAgent.ts); the routes are
 * `MerchantPaths` from the protocol's HTTP contract. `POST /admin/products` (bearer `adminToken`)
 * adds a product. The plugin is encapsulated: its error handler (every error as
 * `{ error: { code, name, message } }`) and its not-found handler apply to its own routes only,
 * never to the shop's.
 */
import { browserCors } from '../http/cors.ts';
import { AdminGuard, DEFAULT_ADMIN_CALLS, DEFAULT_ADMIN_LOCKOUT, type LockoutRule, type RateRule } from '../http/rateLimit.ts';
import { type Clock, systemClock } from '@obol/protocol/clock';
import { installErrorHandler } from '../http/errors.ts';
import { describeRoutes } from '../http/openapi.ts';
import { MerchantRouteSchemas } from '@obol/protocol/routeSchemas';
import { bearerMatches } from '../http/secrets.ts';
import { AddProductRequest, MerchantPaths, RefundRequest } from '@obol/protocol/api';
import { MAX_CIPHERTEXT_B64 } from '@obol/protocol/delivery';
import { ObolError } from '@obol/protocol/errors';
import { checkSchema } from '@obol/protocol/messages';
import { fromBase64Url } from '@obol/protocol/webcrypto';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DASHBOARD_PATH, serveDashboard } from './dashboard.ts';
import { type MerchantConfig, MerchantAgent } from './merchantAgent.ts';

export { type Catalogue, memoryCatalogue, type Product, type ProductSummary } from './catalogue.ts';
export { type AddProductOptions, ProductCatalogue, type ProductInput, type StoredProduct } from './products.ts';
export { type HttpPost, undiciPost } from './http.ts';
export { SealKeys, loadOrCreateSealKeys } from '../store/sealedColumn.ts';
export {
  type CloseReason,
  EMPTY_LIST_SALT,
  MERCHANT_MIGRATIONS_DIR,
  MerchantAgent,
  type MerchantConfig,
  type MerchantLogger,
  migrateMerchantDb,
  recordPurchasesHash,
  type SessionState,
  type SessionView,
  type SweepResult,
} from './merchantAgent.ts';

/** The module's routes, relative to where it is mounted. */
export const MerchantModulePaths = MerchantPaths;

/** The agent's configuration (the plugin opens the agent), or an agent opened by the caller. */
export type MerchantModuleOptions = (MerchantConfig | { agent: MerchantAgent }) & {
  /**
   * How often the session timer runs `agent.sweep()` (closing expired sessions, retrying reports).
   * Default 15 s; 0 turns it off (tests drive `sweep()` themselves).
   */
  sweepIntervalMs?: number;
  /**
   * The shop's administration token: `POST /admin/products` with `authorization: Bearer <token>`
   * adds a product. Without one the route refuses every call.
   */
  adminToken?: string;
  /**
   * Rate limit per client on the administration (adding products, a session read with the admin
   * token) and the lockout after wrong tokens; default DEFAULT_ADMIN_CALLS, DEFAULT_ADMIN_LOCKOUT,
   * on the agent configuration's clock (or `clock`).
   */
  adminLimits?: { calls?: RateRule; lockout?: LockoutRule; clock?: Clock };
  /**
   * The widget's script served at `<module>/obol-widget.js`, so a page needs one script tag
   * pointing at the module: a file path (default: this repository's widget build), or false to
   * serve none.
   */
  widgetScript?: string | false;
};

/** The widget build of this repository (`npm run build`). */
export const WIDGET_SCRIPT = fileURLToPath(new URL('../../../widget/dist/obol-widget.js', import.meta.url));

/** Largest request body the module reads: a signed order or accept is well under 4 KiB. */
const BODY_LIMIT = 64 * 1024;
/** A product added through the administration route: its bytes in base64url, and the rest. */
const ADMIN_BODY_LIMIT = MAX_CIPHERTEXT_B64 + 64 * 1024;

export const merchantModule: FastifyPluginAsync<MerchantModuleOptions> = async (app, opts) => {
  const agent = 'agent' in opts ? opts.agent : await MerchantAgent.open({ ...opts, log: opts.log ?? app.log });
  const ownAgent = !('agent' in opts);

  // Errors of the module's own routes only (the plugin is encapsulated): never the shop's.
  installErrorHandler(app);
  logSetupMistakes(app);
  await describeRoutes(app, {
    title: `Obol merchant module ${agent.merchantId}`,
    description: 'A shop’s merchant module: its catalogue, the trading sessions of wallets, its administration.',
    schemas: MerchantRouteSchemas,
  });
  if (app.hasDecorator('swagger')) app.get(MerchantModulePaths.openapi, async () => app.swagger());


  // The wallet's service worker and the widget call from their own origins; requests carry
  // signatures, never cookies, so any origin may call (CORS without credentials, cors.ts), on
  // the routes they call only: not the acquirer's `info`, not the shop's administration.
  // `authorization` carries a wallet's signed session read (never a cookie or a stored credential).
  browserCors(app, [
    `GET ${MerchantModulePaths.merchant}`,
    `GET ${MerchantModulePaths.products}`,
    `GET ${MerchantModulePaths.product}`,
    `GET ${MerchantModulePaths.session}`,
    `POST ${MerchantModulePaths.order}`,
    `POST ${MerchantModulePaths.accept}`,
    `POST ${MerchantModulePaths.stop}`,
    `POST ${MerchantModulePaths.redeliver}`,
  ]);

  app.get(MerchantModulePaths.merchant, async () => agent.publicInfo());
  app.get(MerchantModulePaths.products, async () => ({ products: await agent.products() }));
  app.get<{ Params: { productId: string } }>(MerchantModulePaths.product, async (request) => agent.description(request.params.productId));

  const adminToken = opts.adminToken;
  const guard = new AdminGuard({
    calls: opts.adminLimits?.calls ?? DEFAULT_ADMIN_CALLS,
    lockout: opts.adminLimits?.lockout ?? DEFAULT_ADMIN_LOCKOUT,
    clock: opts.adminLimits?.clock ?? ('clock' in opts ? opts.clock : systemClock),
  });
  // A session is shown to its wallet (a read signed with the session key) or to the shop's
  // administration (its bearer token), to no one else: pseudonym, deposit and spending are not public.
  app.get<{ Params: { transactionId: string } }>(MerchantModulePaths.session, async (request, reply) => {
    const { authorization } = request.headers;
    if (authorization?.startsWith('Bearer ')) {
      const refused = await guard.guard(request, reply, () => requireShopAdmin(adminToken, authorization));
      if (refused) return refused;
      return agent.session(request.params.transactionId);
    }
    return agent.walletSession(request.params.transactionId, authorization);
  });

  const post = { bodyLimit: BODY_LIMIT };
  app.post(MerchantModulePaths.info, post, async (request) => agent.receiveInfo(request.body));
  app.post(MerchantModulePaths.order, post, async (request) => agent.order(request.body));
  app.post(MerchantModulePaths.accept, post, async (request) => agent.accept(request.body));
  app.post(MerchantModulePaths.stop, post, async (request) => agent.walletStop(request.body));
  app.post(MerchantModulePaths.redeliver, post, async (request) => agent.redeliver(request.body));

  app.post(
    MerchantModulePaths.adminProducts,
    // Before the body is read: a locked-out client does not get to send megabytes.
    { bodyLimit: ADMIN_BODY_LIMIT, onRequest: async (request, reply) => guard.guard(request, reply, () => requireShopAdmin(adminToken, request.headers.authorization)) },
    async (request, reply) =>
      agent.adminIdempotency.run(request, reply, async () => {
        checkSchema(AddProductRequest, request.body, 'product');
        const { content, replace, ...fields } = request.body;
        return agent.addProduct({ ...fields, content: fromBase64Url(content) }, { replace: replace ?? false });
      }),
  );

  // A refund after clearing, through the shop's operator (merchantAgent.refund).
  app.post(
    MerchantModulePaths.adminRefunds,
    { bodyLimit: BODY_LIMIT, onRequest: async (request, reply) => guard.guard(request, reply, () => requireShopAdmin(adminToken, request.headers.authorization)) },
    async (request) => {
      checkSchema(RefundRequest, request.body, 'refund');
      return agent.refund(request.body);
    },
  );

  app.get<{ Querystring: { days?: string } }>(MerchantModulePaths.adminSales, async (request, reply) => {
    const refused = await guard.guard(request, reply, () => requireShopAdmin(adminToken, request.headers.authorization));
    if (refused) return refused;
    const days = Number(request.query.days ?? 30);
    if (!Number.isInteger(days) || days < 1 || days > 366) throw new ObolError('MALFORMED', 'days must be a whole number from 1 to 366');
    return agent.sales({ days });
  });

  // The dashboard page (it reads the sales route above with the token the merchant types in).
  serveDashboard(app);
  app.get(MerchantModulePaths.adminRedirect, async (_request, reply) => reply.redirect(`${app.prefix}${DASHBOARD_PATH}`));

  if (opts.widgetScript !== false) serveWidget(app, opts.widgetScript ?? WIDGET_SCRIPT);

  startTimer(app, agent, opts.sweepIntervalMs ?? 15_000);
  if (ownAgent) app.addHook('onClose', async () => agent.close());
};

/** The bearer token of the shop's administration, compared in constant time. */
function requireShopAdmin(expected: string | undefined, authorization: string | undefined): void {
  if (!expected) throw new ObolError('UNAUTHORIZED', 'this shop has no administration token configured: products are added with agent.addProduct');
  if (!bearerMatches(authorization, expected)) throw new ObolError('UNAUTHORIZED', 'this is the shop’s administration: the shop admin token is required');
}

/**
 * Refusals that mean the shop's page or configuration is wrong, not that a shopper did something:
 * a product the catalogue does not have, a page price or currency other than the catalogue's, a
 * page on an origin the shop does not sell on. The shopper sees a plain sentence; the merchant
 * finds the exact reason in its log (and `obol merchant doctor` finds it before going live).
 */
const SETUP_MISTAKES: ReadonlySet<string> = new Set(['UNKNOWN_PRODUCT', 'PRODUCT_MISMATCH', 'CURRENCY_MISMATCH', 'UNKNOWN_MERCHANT']);

function logSetupMistakes(app: FastifyInstance): void {
  app.addHook('onError', async (request, _reply, err) => {
    const error: unknown = err;
    if (error instanceof ObolError && SETUP_MISTAKES.has(error.name)) {
      request.log.warn({ code: error.name, route: request.routeOptions.url }, `a page asked for something this shop does not sell as asked (check the page or run \`obol merchant doctor\`): ${error.message}`);
    }
  });
}

/**
 * The widget's script, read once and kept. Pages of any origin load it with a script tag (no CORS
 * needed for that); the widget takes the module's URL from the script's own address.
 */
function serveWidget(app: FastifyInstance, file: string): void {
  let code: Promise<string | undefined> | undefined;
  app.get(MerchantModulePaths.widget, async (_request, reply) => {
    code ??= readFile(file, 'utf8').catch(() => undefined);
    const script = await code;
    if (script === undefined) {
      code = undefined; // built later: look again next time
      throw new ObolError('UNAVAILABLE', 'the widget is not built on this server (run `npm run build`)');
    }
    return reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .header('cross-origin-resource-policy', 'cross-origin')
      .header('x-content-type-options', 'nosniff')
      .send(script);
  });
}

/** The session timer: one sweep at a time, never keeping the process alive on its own. */
function startTimer(app: FastifyInstance, agent: MerchantAgent, intervalMs: number): void {
  if (!(intervalMs > 0)) return;
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = agent
      .sweep()
      .catch((err: unknown) => app.log.error({ err }, 'merchant sweep failed'))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  app.addHook('onClose', async () => {
    clearInterval(timer);
    await running;
  });
}


