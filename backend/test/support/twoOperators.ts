import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperatorPaths } from '@obol/protocol/api';
import { ManualClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import type { Http } from '@obol/protocol/http';
import { type KeyHandle, generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import type { MessageBody } from '@obol/protocol/messages';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { certToBase64 } from '@obol/protocol/pki';
import { type BillingSink, JsonlFileSink } from '../../src/billing/index.ts';
import { newsCatalogue } from '../../src/demo/catalogues.ts';
import { postJson, undiciHttp } from '../../src/http/client.ts';
import type { Catalogue } from '../../src/merchant/catalogue.ts';
import type { RootAuthority } from '../../src/operator/identity.ts';
import type { OperatorServer } from '../../src/operator/server.ts';
import { type Db, openDb } from '../../src/store/db.ts';
import { startTestPostgres, type TestPostgres } from './testPostgres.ts';
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
  /** The shop's own database (a test plays a dishonest merchant through it). */
  shopDb: Db;
  /** On PostgreSQL: the SEK operator's database URL (a second process of it can share it). */
  sekDatabaseUrl?: string;
  billingDir: string;
  /** A fresh wallet; `http` wraps the network (e.g. to drop or cut answers). */
  newShopper(depositMinimum?: string, http?: Http): CustomerAgent;
  admin(op: OperatorServer, path: string, body?: unknown): Promise<unknown>;
  billingLines(op: 'sek' | 'eur'): Promise<Array<{ type: string; body: Record<string, unknown> }>>;
  /** Every log line each operator and the shop (with its merchant module) wrote (pino JSON), when started with `captureLogs`. */
  logLines: Record<'op-sek' | 'op-eur' | 'news.example', string[]>;
  close(): Promise<void>;
}

let postgres: TestPostgres | undefined;

async function databases(engine: Engine): Promise<{ sek: Db; eur: Db; shop: Db; sekUrl?: string }> {
  if (engine === 'PGlite') return { sek: await openDb(), eur: await openDb(), shop: await openDb() };
  postgres ??= await startTestPostgres();
  const sekUrl = await postgres.createDatabase();
  return {
    sekUrl,
    sek: await openDb({ databaseUrl: sekUrl }),
    eur: await openDb({ databaseUrl: await postgres.createDatabase() }),
    shop: await openDb({ databaseUrl: await postgres.createDatabase() }),
  };
}

export async function stopTestPostgres(): Promise<void> {
  await postgres?.stop();
  postgres = undefined;
}

const FAR = { limit: 1_000_000, windowSec: 1 };
const UNLIMITED_FOR_TESTS = { registration: FAR, logon: FAR, topUp: FAR, admin: FAR, adminLockout: { failures: 1_000_000, windowSec: 1, lockoutSec: 1 } };

/** The test clock's start: 2026-11-23 12:00 UTC. */
export const TEST_START = Date.UTC(2026, 10, 23, 12);

export async function twoOperators(
  engine: Engine,
  opts: {
    clearingGraceSec?: number;
    /** Arbiters every operator trusts (name → SPKI base64url). */
    arbiters?: Record<string, string>;
    /** The shop's administration token (`POST /obol/admin/products`). */
    shopAdminToken?: string;
    /** The interbank root (default: a new one). */
    root?: RootAuthority;
    /** Keep the operators' and the shop's log lines (every level) in `logLines` instead of discarding them. */
    captureLogs?: boolean;
    /** Billing sinks the EUR operator feeds besides its JSONL file (e.g. a webhook with its secret). */
    eurSinks?: BillingSink[];
    /** What the shop sells (default: the demo news articles, EUR 0.03 each). */
    catalogue?: Catalogue;
  } = {},
): Promise<TwoOperators> {
  const clock = new ManualClock(TEST_START);
  const dbs = await databases(engine);
  const billingDir = await mkdtemp(join(tmpdir(), 'obol-billing-'));
  const logLines: TwoOperators['logLines'] = { 'op-sek': [], 'op-eur': [], 'news.example': [] };
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
        sinks: [new JsonlFileSink(join(billingDir, 'eur.jsonl')), ...(opts.eurSinks ?? [])],
      },
    ],
    {
      clock,
      clearingGraceSec: opts.clearingGraceSec ?? 300,
      // Every request of these tests comes from 127.0.0.1 on a clock that stands still (and the
      // hostile-input test sends thousands): the limits are far out of the way here, and tested
      // at their defaults in rateLimit.test.ts.
      rateLimits: UNLIMITED_FOR_TESTS,
      ...(opts.arbiters ? { arbiters: opts.arbiters } : {}),
      ...(opts.root ? { root: opts.root } : {}),
      ...(opts.captureLogs ? { logStream: (id: string) => ({ write: (line: string) => void logLines[id as 'op-sek' | 'op-eur'].push(line) }) } : {}),
    },
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
    catalogue: opts.catalogue ?? newsCatalogue('EUR'),
    clock,
    db: dbs.shop,
    sweepIntervalMs: 0,
    ...(opts.shopAdminToken ? { shopAdminToken: opts.shopAdminToken } : {}),
    adminLimits: { calls: FAR, lockout: UNLIMITED_FOR_TESTS.adminLockout },
    ...(opts.captureLogs ? { logStream: { write: (line: string) => void logLines['news.example'].push(line) } } : {}),
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
    shopDb: dbs.shop,
    ...(dbs.sekUrl ? { sekDatabaseUrl: dbs.sekUrl } : {}),
    billingDir,
    newShopper: (minimum?: string, http?: Http) =>
      new CustomerAgent({
        store: new MemoryWalletStore(),
        http: http ?? undiciHttp,
        clock,
        depositPolicy: { ...(minimum ? { minimum } : {}), timeoutSec: 900 },
        trustedRoots: [certToBase64(world.root.cert)],
      }),
    admin,
    logLines,
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
      for (const db of [dbs.sek, dbs.eur, dbs.shop]) await db.close();
      await rm(billingDir, { recursive: true, force: true });
    },
  };
}

/**
 * A shopper of op-sek driven by hand, without the customer agent (for tests that send the raw
 * messages): registered, funded with `funds`, and logged on.
 */
export async function rawCustomer(t: TwoOperators, funds = 'SEK:10.00') {
  const key = await keyHandle(await generateSigningKeyPair());
  const reg = (await postJson(`${t.sek.url}${OperatorPaths.registerCustomer}`, { publicKey: key.publicKeySpki })) as { customerId: string };
  await t.admin(t.sek, OperatorPaths.adminFund, { customerId: reg.customerId, amount: funds });
  const { challenge } = (await postJson(`${t.sek.url}${OperatorPaths.challenge}`, { customerId: reg.customerId })) as { challenge: string };
  const login = await signMessage('wallet.login', { msgId: randomId(), customerId: reg.customerId, challenge, time: t.clock.now() }, key.signer);
  const session = (await postJson(`${t.sek.url}${OperatorPaths.login}`, login)) as { sessionId: string; token: string };
  return { key, customerId: reg.customerId, session, login };
}

/** FIG 2 step 2 as a wallet writes it: a SEK 2.00 deposit at news.example (op-eur), under op-sek's current table. */
export async function initiateBody(t: TwoOperators, sessionId: string, sessionKey: KeyHandle): Promise<MessageBody<'wallet.initiate'>> {
  const table = (await t.sek.app.inject({ method: 'GET', url: OperatorPaths.exchangeTable })).json() as { body: { issuedAt: number } };
  return {
    msgId: randomId(),
    sessionId,
    merchantId: 'news.example',
    merchantOperatorId: 'op-eur',
    firstPrice: 'EUR:0.03',
    deposit: 'SEK:2.00',
    timeoutSec: 600,
    sessionPublicKey: sessionKey.publicKeySpki,
    k1: randomId(32),
    shownTableIssuedAt: table.body.issuedAt,
    time: t.clock.now(),
  };
}
