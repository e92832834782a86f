import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { JsonlFileSink } from '../../src/billing/index.ts';
import { newsCatalogue } from '../../src/demo/catalogues.ts';
import { undiciHttp } from '../../src/http/client.ts';
import type { OperatorServer } from '../../src/operator/server.ts';
import { type Db, openDb } from '../../src/store/db.ts';
import { startTestPostgres, type TestPostgres } from '../../src/store/testPostgres.ts';
import { type Shop, startShop } from '../../src/world/shop.ts';
import { type World, startOperators } from '../../src/world/world.ts';

export type Engine = 'PGlite' | 'PostgreSQL';

/**
 * The seed's world for the integration tests: a SEK operator (the shopper's bank), a EUR
 * operator (the merchant's bank), and a EUR news shop at the EUR operator — real servers on
 * 127.0.0.1 talking signed HTTP, on PGlite or on a real PostgreSQL server, with a clock the
 * tests move.
 */
export interface TwoOperators {
  clock: ManualClock;
  world: World;
  sek: OperatorServer;
  eur: OperatorServer;
  shop: Shop;
  billingDir: string;
  newShopper(depositMinimum?: string): CustomerAgent;
  admin(op: OperatorServer, path: string, body?: unknown): Promise<unknown>;
  billingLines(op: 'sek' | 'eur'): Promise<Array<{ type: string; body: Record<string, unknown> }>>;
  close(): Promise<void>;
}

let postgres: TestPostgres | undefined;

async function databases(engine: Engine): Promise<{ sek: Db; eur: Db; shop: Db }> {
  if (engine === 'PGlite') return { sek: await openDb(), eur: await openDb(), shop: await openDb() };
  postgres ??= await startTestPostgres();
  return {
    sek: await openDb({ databaseUrl: await postgres.createDatabase() }),
    eur: await openDb({ databaseUrl: await postgres.createDatabase() }),
    shop: await openDb({ databaseUrl: await postgres.createDatabase() }),
  };
}

export async function stopTestPostgres(): Promise<void> {
  await postgres?.stop();
  postgres = undefined;
}

export async function twoOperators(engine: Engine, opts: { clearingGraceSec?: number } = {}): Promise<TwoOperators> {
  const clock = new ManualClock(Date.UTC(2026, 10, 23, 12));
  const dbs = await databases(engine);
  const billingDir = await mkdtemp(join(tmpdir(), 'obol-billing-'));
  const world = await startOperators(
    [
      {
        operatorId: 'op-sek',
        name: 'Svea Bank',
        currency: 'SEK',
        rates: { EUR: '0.0874', USD: '0.0951' },
        db: dbs.sek,
        sinks: [new JsonlFileSink(join(billingDir, 'sek.jsonl'))],
      },
      {
        operatorId: 'op-eur',
        name: 'Banque Euro',
        currency: 'EUR',
        rates: { SEK: '11.44', USD: '1.088' },
        db: dbs.eur,
        sinks: [new JsonlFileSink(join(billingDir, 'eur.jsonl'))],
      },
    ],
    { clock, clearingGraceSec: opts.clearingGraceSec ?? 300 },
  );
  const sek = world.operators['op-sek']!;
  const eur = world.operators['op-eur']!;
  const shop = await startShop({
    merchantId: 'news.example',
    name: 'The Daily Obol',
    operatorUrl: eur.url,
    operatorId: 'op-eur',
    currency: 'EUR',
    adminToken: world.adminToken,
    catalogue: newsCatalogue('EUR'),
    clock,
    db: dbs.shop,
    sweepIntervalMs: 0,
  });
  const admin = async (op: OperatorServer, path: string, body?: unknown) => {
    const res = await op.app.inject({
      method: body === undefined ? 'GET' : 'POST',
      url: path,
      headers: { authorization: `Bearer ${world.adminToken}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return res.json();
  };
  return {
    clock,
    world,
    sek,
    eur,
    shop,
    billingDir,
    newShopper: (minimum?: string) =>
      new CustomerAgent({
        store: new MemoryWalletStore(),
        http: undiciHttp,
        clock,
        depositPolicy: { ...(minimum ? { minimum } : {}), timeoutSec: 900 },
      }),
    admin,
    billingLines: async (op) => {
      await (op === 'sek' ? sek : eur).billing.dispatchDue();
      const text = await readFile(join(billingDir, `${op}.jsonl`), 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; body: Record<string, unknown> });
    },
    close: async () => {
      await shop.close();
      await world.close();
      for (const db of Object.values(dbs)) await db.close();
      await rm(billingDir, { recursive: true, force: true });
    },
  };
}
