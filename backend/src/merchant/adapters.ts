/**
 * The merchant module in a merchant's own server, from the shop folder `obol merchant init` made
 * (and the operator registered): three ways in, one implementation behind them.
 *
 *   Fastify:            await app.register(obolFastify, { shop: './shop' })
 *   node:http, Express: const obol = await obolNodeHandler({ shop: './shop' }); expressApp.use(obol)
 *   fetch-style:        const obol = await obolFetchHandler({ shop: './shop' }); return obol(request)
 *
 * Each mounts the merchant module (merchantModule.ts) at `/obol`, the path the shop registered
 * (`<publicUrl>/obol`), with the widget script at `/obol/obol-widget.js`. The Node and fetch
 * handlers route into a Fastify instance of their own that holds the same plugin: the Node handler
 * through Fastify's `routing` (the raw request and response, no copy), the fetch handler through
 * `inject` (Fastify's in-process request, with the caller's client address for the rate limits).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '@obol/protocol/clock';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type InjectOptions } from 'fastify';
import { obolServerOptions } from '../http/serverOptions.ts';
import { merchantModule } from './merchantModule.ts';
import { MODULE_PATH, loadShopFolder } from './setup.ts';
import { openShop } from './standalone.ts';

export interface ObolShopOptions {
  /** The shop's folder made by `obol merchant init` (or its shop.json), with its registration.json. */
  shop: string;
  /** How often expired sessions are closed and reports retried (default 15 s; 0 = never, tests). */
  sweepIntervalMs?: number;
  /** The widget script to serve: a file, or false for none (default: the one this module ships). */
  widgetScript?: string | false;
  /** The clock (tests); default the system's. */
  clock?: Clock;
}

export interface ObolHandlerOptions extends ObolShopOptions {
  /** Log lines (pino JSON on standard output) of the module's own Fastify instance. Default true. */
  logger?: boolean;
}

/** A handler holds the shop's database open: `close()` it when the server stops. */
interface Closable {
  close(): Promise<void>;
}

export type ObolNodeHandler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void) & Closable;
export type ObolFetchHandler = ((request: Request, client?: { remoteAddress?: string }) => Promise<Response>) & Closable;

/**
 * A Fastify plugin: the shop of `options.shop` at `/obol` of the server it is registered in.
 * Register it without a prefix (the operator knows the module at `<publicUrl>/obol`). Closing the
 * server closes the shop's database.
 */
export const obolFastify: FastifyPluginAsync<ObolShopOptions> = async (app, o) => {
  const opened = await openShop(await loadShopFolder(o.shop), { log: app.log, ...(o.clock ? { clock: o.clock } : {}) });
  // The module's own onClose (its session timer) runs before this one: children close first.
  app.addHook('onClose', async () => opened.close());
  await app.register(merchantModule, {
    prefix: MODULE_PATH,
    agent: opened.agent,
    adminToken: opened.shop.config.adminToken,
    sweepIntervalMs: o.sweepIntervalMs ?? 15_000,
    ...(o.clock ? { adminLimits: { clock: o.clock } } : {}),
    ...(o.widgetScript !== undefined ? { widgetScript: o.widgetScript } : {}),
  });
};

/** The Fastify instance behind the Node and fetch handlers: the plugin above, and nothing else. */
async function handlerApp(o: ObolHandlerOptions): Promise<FastifyInstance> {
  const app = Fastify(obolServerOptions({ logger: o.logger ?? true }));
  const { logger: _logger, ...shop } = o;
  await app.register(obolFastify, shop);
  await app.ready();
  return app;
}

/** Whether a request path is the module's (`/obol` or below it). */
function isModulePath(url: string | undefined): boolean {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return path === MODULE_PATH || path.startsWith(`${MODULE_PATH}/`);
}

/**
 * A `(req, res, next?)` handler for node:http and Express. With Express, `app.use(handler)` before
 * any body parser (the module reads its own bodies): paths outside `/obol` go on to `next`.
 * Without `next` (node:http) every request it is given is answered, outside `/obol` with 404.
 */
export async function obolNodeHandler(o: ObolHandlerOptions): Promise<ObolNodeHandler> {
  const app = await handlerApp(o);
  const handler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    if (next && !isModulePath(req.url)) {
      next();
      return;
    }
    app.routing(req, res);
  };
  return Object.assign(handler, { close: () => app.close() });
}

/** Hop-by-hop and framing headers: the in-process request and the Response frame their own bodies. */
const FRAMING_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade']);
/** Statuses whose response has no body (the Response constructor refuses one). */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * A fetch-style handler, `(Request) => Promise<Response>`, for servers built on the Fetch API.
 * `client.remoteAddress` is the shopper's address (the administration's rate limits count by it);
 * without it every request counts as one client.
 */
export async function obolFetchHandler(o: ObolHandlerOptions): Promise<ObolFetchHandler> {
  const app = await handlerApp(o);
  const handler = async (request: Request, client: { remoteAddress?: string } = {}): Promise<Response> => {
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      if (!FRAMING_HEADERS.has(name)) headers[name] = value;
    });
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD' && request.body !== null;
    const answer = await app.inject({
      method: request.method as InjectOptions['method'],
      url: `${url.pathname}${url.search}`,
      headers,
      remoteAddress: client.remoteAddress ?? '127.0.0.1',
      ...(hasBody ? { payload: Buffer.from(await request.arrayBuffer()) } : {}),
    });
    const out = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined || FRAMING_HEADERS.has(name)) continue;
      for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
    }
    const body = NO_BODY.has(answer.statusCode) || request.method === 'HEAD' ? null : new Uint8Array(answer.rawPayload);
    return new Response(body, { status: answer.statusCode, headers: out });
  };
  return Object.assign(handler, { close: () => app.close() });
}
