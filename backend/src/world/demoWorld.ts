import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Clock, systemClock } from '@obol/protocol/clock';
import { JsonlFileSink } from '../billing/index.ts';
import { downloadsCatalogue, newsCatalogue } from '../demo/catalogues.ts';
import { shopPages } from '../demo/shopPages.ts';
import type { RateLimits } from '../operator/config.ts';
import type { OperatorServer } from '../operator/server.ts';
import { type Db, openDb } from '../store/db.ts';
import { type Shop, type ShopOptions, startShop } from './shop.ts';
import { persistentRoot, startOperators, type World } from './world.ts';

/**
 * The seed's world, as the demo runs it and the browser tests drive it: Svea Bank (op-sek, SEK)
 * and Banque Euro (op-eur, EUR) trusting one interbank root; The Daily Obol, a EUR news shop at
 * Banque Euro selling articles for 0.03; and Obol Downloads, a SEK shop at Svea Bank selling
 * files through secure delivery. With a data folder, keys and embedded databases persist there;
 * without, everything lives in memory on free ports.
 */
export interface DemoWorldOptions {
  dataDir?: string;
  ports?: { opSek?: number; opEur?: number; news?: number; downloads?: number };
  clock?: Clock;
  adminToken?: string;
  /** Deadline and billing timers in the operators, session timers in the shops (the demo: on). */
  timers?: boolean;
  /** Extra pages for the news shop (tests add theirs). */
  newsPages?: ShopOptions['pages'];
  /** How long the operators' exchange tables are valid (default 3600 s; the browser tests shorten it). */
  tableLifetimeSec?: number;
  /**
   * The interbank root's key folder (default: `<dataDir>/keys/root`, or a new root in memory). The
   * browser tests run in memory but under the demo's persistent root, the one the extension build
   * embeds as its trusted root.
   */
  rootDir?: string;
  /** Rate limits per client (default DEMO_RATE_LIMITS). */
  rateLimits?: RateLimits;
  /** The shops' own administration token: their dashboards and sales (default: a demo token). */
  shopAdminToken?: string;
}

/**
 * In the demo every client is 127.0.0.1 (the browser, the shops, the CLI, the browser tests), so
 * the wallet routes get more room than DEFAULT_RATE_LIMITS gives one address; they stay limited.
 */
export const DEMO_RATE_LIMITS: RateLimits = {
  registration: { limit: 60, windowSec: 600 },
  logon: { limit: 120, windowSec: 60 },
  topUp: { limit: 60, windowSec: 60 },
};

export interface DemoWorld {
  world: World;
  sek: OperatorServer;
  eur: OperatorServer;
  news: Shop;
  downloads: Shop;
  adminToken: string;
  /** Both shops' administration token (`<shop>/obol/admin/`, `obol merchant sales`). */
  shopAdminToken: string;
  billingFile(operatorId: 'op-sek' | 'op-eur'): string;
  close(): Promise<void>;
}

export async function startDemoWorld(o: DemoWorldOptions = {}): Promise<DemoWorld> {
  const clock = o.clock ?? systemClock;
  const timers = o.timers ?? true;
  const adminToken = o.adminToken ?? 'demo-admin-token-change-me';
  const shopAdminToken = o.shopAdminToken ?? 'demo-shop-token-change-me';
  const dir = o.dataDir;
  if (dir) await mkdir(dir, { recursive: true });
  const dbs: Db[] = [];
  const db = async (name: string) => {
    const d = await openDb(dir ? { dataDir: join(dir, name) } : {});
    dbs.push(d);
    return d;
  };
  const billingRoot = dir ?? (await mkdtemp(join(tmpdir(), 'obol-billing-')));
  const billingFile = (id: string) => join(billingRoot, `${id}-billing.jsonl`);

  const world = await startOperators(
    [
      {
        operatorId: 'op-sek',
        name: 'Svea Bank',
        currency: 'SEK',
        port: o.ports?.opSek ?? 0,
        rates: { EUR: '0.0874', USD: '0.0951', GBP: '0.0745' },
        db: await db('op-sek'),
        sinks: [new JsonlFileSink(billingFile('op-sek'))],
        ...(o.tableLifetimeSec !== undefined ? { tableLifetimeSec: o.tableLifetimeSec } : {}),
        ...(dir ? { keyDir: join(dir, 'keys', 'op-sek') } : {}),
      },
      {
        operatorId: 'op-eur',
        name: 'Banque Euro',
        currency: 'EUR',
        port: o.ports?.opEur ?? 0,
        rates: { SEK: '11.44', USD: '1.088', GBP: '0.853' },
        db: await db('op-eur'),
        sinks: [new JsonlFileSink(billingFile('op-eur'))],
        ...(o.tableLifetimeSec !== undefined ? { tableLifetimeSec: o.tableLifetimeSec } : {}),
        ...(dir ? { keyDir: join(dir, 'keys', 'op-eur') } : {}),
      },
    ],
    {
      clock,
      timers,
      adminToken,
      rateLimits: o.rateLimits ?? DEMO_RATE_LIMITS,
      ...(o.rootDir || dir ? { root: await persistentRoot(o.rootDir ?? join(dir as string, 'keys', 'root'), clock.now()) } : {}),
    },
  );
  const sek = world.operators['op-sek']!;
  const eur = world.operators['op-eur']!;
  const shop = async (spec: {
    merchantId: string;
    name: string;
    tagline: string;
    operator: OperatorServer;
    catalogue: ShopOptions['catalogue'];
    kind: 'article' | 'file';
    port?: number;
    extra?: ShopOptions['pages'];
  }) =>
    startShop({
      merchantId: spec.merchantId,
      name: spec.name,
      operatorUrl: spec.operator.url,
      operatorId: spec.operator.ctx.config.operatorId,
      currency: spec.operator.ctx.config.currency,
      adminToken,
      shopAdminToken,
      catalogue: spec.catalogue,
      clock,
      ...(spec.port ? { port: spec.port, origins: [`http://localhost:${spec.port}`] } : {}),
      db: await db(`shop-${spec.merchantId}`),
      // The shop's data key (sealing K1 and K2 in its database) beside the operators' keys.
      ...(dir ? { keyDir: join(dir, 'keys', `shop-${spec.merchantId}`) } : {}),
      sweepIntervalMs: timers ? 15_000 : 0,
      pages: async (app, agent) => {
        await shopPages(app, { title: spec.name, tagline: spec.tagline, products: () => agent.products(), kind: spec.kind });
        await spec.extra?.(app, agent);
      },
    });
  const news = await shop({
    merchantId: 'news.example',
    name: 'The Daily Obol',
    tagline: 'Articles for three cents each, paid with one click.',
    operator: eur,
    catalogue: newsCatalogue('EUR'),
    kind: 'article',
    ...(o.ports?.news ? { port: o.ports.news } : {}),
    ...(o.newsPages ? { extra: o.newsPages } : {}),
  });
  const downloads = await shop({
    merchantId: 'downloads.example',
    name: 'Obol Downloads',
    tagline: 'Small files, sold through secure delivery: you check what you get before you pay for it.',
    operator: sek,
    catalogue: downloadsCatalogue('SEK'),
    kind: 'file',
    ...(o.ports?.downloads ? { port: o.ports.downloads } : {}),
  });
  return {
    world,
    sek,
    eur,
    news,
    downloads,
    adminToken,
    shopAdminToken,
    billingFile: (id) => billingFile(id),
    close: async () => {
      await news.close();
      await downloads.close();
      await world.close();
      for (const d of dbs) await d.close();
    },
  };
}
