/**
 * The standalone merchant server (`obol merchant serve --config shop.json`): for a site with no
 * server of its own (a static blog), the merchant module on its own port with its own store —
 * PGlite in the shop's folder by default, PostgreSQL by URL — serving the widget script, and the
 * shop's own static pages when it has some.
 */
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { type Clock, systemClock } from '@obol/protocol/clock';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { trustServerCas } from '../http/client.ts';
import { mediaTypeOf } from '../http/mediaTypes.ts';
import { obolServerOptions } from '../http/serverOptions.ts';
import { loadTls } from '../http/tls.ts';
import { openDb } from '../store/db.ts';
import { loadOrCreateSealKeys } from '../store/sealedColumn.ts';
import { MerchantAgent, type MerchantLogger } from './merchantAgent.ts';
import { merchantModule, undiciPost } from './merchantModule.ts';
import { MODULE_PATH, type ShopFolder, loadMerchantKey, loadRegistration } from './setup.ts';

export interface MerchantServer {
  app: FastifyInstance;
  agent: MerchantAgent;
  /** Where it listens (its public URL may differ behind a proxy). */
  url: string;
  close(): Promise<void>;
}

export interface StartMerchantServerOptions {
  clock?: Clock;
  logger?: boolean;
  logStream?: { write(line: string): void };
  /** The widget build to serve (default: this repository's). */
  widgetScript?: string;
  /** Session timer period (default 15 s; 0 = off). */
  sweepIntervalMs?: number;
}

/** A shop's merchant agent opened from its folder, with what it holds open (database, operator client). */
export interface OpenedShop {
  shop: ShopFolder;
  agent: MerchantAgent;
  /** Closes the agent, then the connections to the operator, then the database. */
  close(): Promise<void>;
}

/**
 * Opens the shop of a folder made by `obol merchant init` (and registered): its key, its
 * operator's answer, its data key, its database. The one way a shop is opened, whether it runs as
 * `obol merchant serve` or inside the merchant's own server (adapters.ts).
 */
export async function openShop(shop: ShopFolder, o: { clock?: Clock; log?: MerchantLogger } = {}): Promise<OpenedShop> {
  const { config, dir } = shop;
  const key = await loadMerchantKey(dir);
  const registration = await loadRegistration(dir);
  const sealKeys = await loadOrCreateSealKeys(dir);
  const operatorCa = config.operatorCa ? await readFile(config.operatorCa, 'utf8') : undefined;
  if (operatorCa) trustServerCas([operatorCa]);
  const toOperator = undiciPost(operatorCa ? { ca: [operatorCa] } : {});
  const db = await openDb({ databaseUrl: config.databaseUrl ?? process.env.DATABASE_URL, dataDir: config.dataDir });
  let agent: MerchantAgent;
  try {
    agent = await MerchantAgent.open({
      merchantId: config.merchantId,
      name: config.name,
      key,
      merchantCert: registration.merchantCert,
      operatorCert: registration.operatorCert,
      operatorSigningCert: registration.signingCert,
      operatorId: config.operatorId,
      operatorUrl: config.operatorUrl,
      currency: config.currency,
      origins: config.origins,
      db,
      sealKeys,
      clock: o.clock ?? systemClock,
      http: toOperator.post,
      ...(o.log ? { log: o.log } : {}),
    });
  } catch (e) {
    await db.close();
    await toOperator.close();
    throw e;
  }
  return {
    shop,
    agent,
    close: async () => {
      await agent.close();
      await toOperator.close();
      await db.close();
    },
  };
}

export async function startMerchantServer(shop: ShopFolder, o: StartMerchantServerOptions = {}): Promise<MerchantServer> {
  const { config } = shop;
  const clock = o.clock ?? systemClock;
  const tls = config.tls ? await loadTls(config.tls) : undefined;
  const logger = o.logStream ? { level: 'info', stream: o.logStream } : (o.logger ?? true);
  const app = Fastify(obolServerOptions({ logger, ...(tls ? { tls } : {}) }));
  const opened = await openShop(shop, { clock, log: app.log });
  const { agent } = opened;
  app.get('/healthz', async () => ({ ok: true, merchantId: config.merchantId }));
  await app.register(merchantModule, {
    prefix: MODULE_PATH,
    agent,
    adminToken: config.adminToken,
    sweepIntervalMs: o.sweepIntervalMs ?? 15_000,
    adminLimits: { clock },
    ...(o.widgetScript ? { widgetScript: o.widgetScript } : {}),
  });
  if (config.pages) await servePages(app, config.pages);
  await app.listen({ port: config.port, host: config.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    app,
    agent,
    url: `${tls ? 'https' : 'http'}://${config.host ?? '127.0.0.1'}:${port}`,
    close: async () => {
      await app.close();
      await opened.close();
    },
  };
}

/**
 * The shop's own pages from a folder: GET of a file under it (a folder gives its index.html),
 * nothing outside it — `..` and symbolic links leading out are refused as not found.
 */
async function servePages(app: FastifyInstance, folder: string): Promise<void> {
  const root = await realpath(resolve(folder));
  const send = async (reply: FastifyReply, urlPath: string) => {
    let path: string;
    try {
      path = decodeURIComponent(urlPath.split('?')[0] ?? '/');
    } catch {
      return reply.status(400).type('text/plain').send('bad path');
    }
    if (path.includes('\0')) return reply.status(400).type('text/plain').send('bad path');
    let file = resolve(root, `.${path}`);
    let info = await stat(file).catch(() => undefined);
    if (info?.isDirectory()) {
      file = join(file, 'index.html');
      info = await stat(file).catch(() => undefined);
    }
    const real = info?.isFile() ? await realpath(file).catch(() => undefined) : undefined;
    if (!info || !real || (real !== root && !real.startsWith(root + sep))) {
      return reply.status(404).type('text/plain').send('not found');
    }
    return reply
      .type(mediaTypeOf(real) ?? 'application/octet-stream')
      .header('x-content-type-options', 'nosniff')
      .send(createReadStream(real));
  };
  app.get('/', async (request, reply) => send(reply, request.url));
  app.get('/*', async (request, reply) => send(reply, request.url));
}
