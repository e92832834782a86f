// The declarations of @obol/merchant (kept by hand; test/types.check.ts checks them against the
// module's real exports both ways, so they can neither promise more nor accept less than it does).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';

/** Where the module is mounted under the shop's public URL: the operator knows it at `<publicUrl>/obol`. */
export declare const MODULE_PATH: '/obol';

export interface ObolShopOptions {
  /** The shop's folder made by `obol merchant init` (or its shop.json), with its registration.json. */
  shop: string;
  /** How often expired sessions are closed and reports retried (default 15 s; 0 = never, tests). */
  sweepIntervalMs?: number;
  /** The widget script to serve: a file, or false for none (default: the one this package ships). */
  widgetScript?: string | false;
  /** The clock (tests); default the system's. */
  clock?: { now(): number };
}

export interface ObolHandlerOptions extends ObolShopOptions {
  /** Log lines (pino JSON on standard output) of the module's own Fastify instance. Default true. */
  logger?: boolean;
}

/** `(req, res, next?)` for node:http and Express; `close()` closes the shop's database. */
export type ObolNodeHandler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void) & {
  close(): Promise<void>;
};

/** `(Request) => Promise<Response>`; `client.remoteAddress` is the shopper's address (rate limits). */
export type ObolFetchHandler = ((request: Request, client?: { remoteAddress?: string }) => Promise<Response>) & {
  close(): Promise<void>;
};

/** A Fastify plugin: the shop at `/obol` of the server it is registered in (register it without a prefix). */
export declare const obolFastify: FastifyPluginAsync<ObolShopOptions>;

/** The module as a node:http / Express handler (Express: `app.use(handler)` before any body parser). */
export declare function obolNodeHandler(options: ObolHandlerOptions): Promise<ObolNodeHandler>;

/** The module as a fetch-style handler. */
export declare function obolFetchHandler(options: ObolHandlerOptions): Promise<ObolFetchHandler>;
