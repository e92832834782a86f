import { OperatorPaths, RegisterMerchantResponse } from '@obol/protocol/api';
import type { ManualClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { ObolError } from '@obol/protocol/errors';
import { type KeyHandle, generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { checkSchema } from '@obol/protocol/messages';
import { type Amount, parseAmount } from '@obol/protocol/money';
import { certToBase64 } from '@obol/protocol/pki';
import { MemoryWalletStore, type WalletStore } from '@obol/protocol/walletStore';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BillingRecord, BillingSink } from '../../src/billing/index.ts';
import { type Catalogue, MerchantAgent, type Product, memoryCatalogue, merchantModule } from '../../src/merchant/merchantModule.ts';
import type { OperatorConfig } from '../../src/operator/config.ts';
import { type OperatorIdentity, type RootAuthority, createOperatorIdentity, createRoot } from '../../src/operator/identity.ts';
import { type OperatorServer, startOperator } from '../../src/operator/server.ts';
import { releaseStalledInitiations } from '../../src/operator/accountManager.ts';
import { settleDeadlines } from '../../src/operator/acquirer.ts';
import { type Db, openDb } from '../../src/store/db.ts';
import { SealKeys } from '../../src/store/sealedColumn.ts';
import { type FaultRates, NO_FAULTS, type RunStats, countFault } from './faults.ts';
import type { NetworkHosts, SimNetwork } from './network.ts';
import type { Prng } from './prng.ts';
import type { Trace } from './trace.ts';

/** The simulated clock's start (2026-11-23 12:00 UTC), the same for every seed. */
export const SIM_START = Date.UTC(2026, 10, 23, 12);
export const ADMIN_TOKEN = 'sim-admin-token';

const FAR = { limit: 1_000_000_000, windowSec: 1 };
const NO_RATE_LIMITS = { registration: FAR, logon: FAR, topUp: FAR, admin: FAR, adminLockout: { failures: 1_000_000_000, windowSec: 1, lockoutSec: 1 } };

export interface OperatorSpec {
  id: string;
  name: string;
  currency: string;
  rates: Record<string, string>;
}

export const OPERATORS: readonly OperatorSpec[] = [
  { id: 'op-sek', name: 'Svea Bank', currency: 'SEK', rates: { EUR: '0.0874' } },
  { id: 'op-eur', name: 'Banque Euro', currency: 'EUR', rates: { SEK: '11.44' } },
];

export interface ShopSpec {
  merchantId: string;
  operatorId: string;
  currency: string;
}

export const SHOPS: readonly ShopSpec[] = [
  { merchantId: 'shop-sek', operatorId: 'op-sek', currency: 'SEK' },
  { merchantId: 'shop-eur', operatorId: 'op-eur', currency: 'EUR' },
];

/**
 * The goods: ids, titles and descriptions no operator may ever hold (the privacy invariant scans
 * for them). Prices are small and uneven so that conversion rounding is exercised.
 */
export function catalogueFor(merchantId: string, currency: string): Product[] {
  const minor = currency === 'SEK' ? ['0.37', '0.53', '1.19', '0.08', '2.71'] : ['0.03', '0.05', '0.11', '0.01', '0.27'];
  const words = ['quokka', 'zephyr', 'marzipan', 'obsidian', 'tamarind'];
  return minor.map((price, i) => ({
    productId: `${merchantId}-${words[i]}-${i}`,
    title: `The ${words[i]} chronicle of ${merchantId}`,
    description: `Secret goods: ${words[i]} volume ${i} from ${merchantId}`,
    price: `${currency}:${price}`,
    contentType: 'text/plain; charset=utf-8',
    content: new TextEncoder().encode(`${words[i]} content of ${merchantId}, number ${i}\n`),
  }));
}

/**
 * What a worker makes once and every seed reuses: the interbank root and the operators'
 * identities, data keys, the shops' keys, and the databases (one PGlite per party, opened once —
 * its first start costs seconds — and emptied between seeds).
 */
export interface KeyMaterial {
  root: RootAuthority;
  identities: Map<string, OperatorIdentity>;
  operatorSeals: Map<string, SealKeys>;
  shopKeys: Map<string, KeyHandle>;
  shopSeals: Map<string, SealKeys>;
  dbs: Map<string, Db>;
}

export async function makeKeyMaterial(): Promise<KeyMaterial> {
  const root = await createRoot('Obol Simulation Root', SIM_START);
  const identities = new Map<string, OperatorIdentity>();
  const operatorSeals = new Map<string, SealKeys>();
  const dbs = new Map<string, Db>();
  for (const op of OPERATORS) {
    identities.set(op.id, (await createOperatorIdentity(root, op.id, SIM_START)).identity);
    operatorSeals.set(op.id, await SealKeys.ephemeral());
    dbs.set(op.id, await openDb());
  }
  const shopKeys = new Map<string, KeyHandle>();
  const shopSeals = new Map<string, SealKeys>();
  for (const shop of SHOPS) {
    shopKeys.set(shop.merchantId, await keyHandle(await generateSigningKeyPair()));
    shopSeals.set(shop.merchantId, await SealKeys.ephemeral());
    dbs.set(shop.merchantId, await openDb());
  }
  // The simulated disk needs no flush at commit: a crash here keeps the database object itself
  // (what a kill -9 between transactions leaves), and commits cost a third as much without it.
  for (const db of dbs.values()) await db.query('SET synchronous_commit = off');
  return { root, identities, operatorSeals, shopKeys, shopSeals, dbs };
}

/** Empty a party's database for the next seed (the migrations run again on start). */
async function resetDb(db: Db): Promise<void> {
  await db.query('DROP SCHEMA public CASCADE');
  await db.query('CREATE SCHEMA public');
}

/**
 * A billing system: keeps each record once by its id (as the sink contract asks of a receiver),
 * and counts every delivery. Its faults: a delivery that fails (nothing kept) and one whose
 * acknowledgement is lost after the record was kept (the outbox delivers it again).
 */
export class SimBillingSink implements BillingSink {
  readonly name = 'sim-billing';
  readonly records = new Map<string, BillingRecord>();
  /** Records delivered again with other contents than the first time (must stay empty). */
  readonly conflicting: string[] = [];
  deliveries = 0;
  rates: FaultRates = NO_FAULTS;

  constructor(
    private readonly prng: Prng,
    private readonly stats: RunStats,
    private readonly trace: Trace,
    readonly operatorId: string,
  ) {}

  async deliver(record: BillingRecord): Promise<void> {
    if (this.prng.chance(this.rates.sinkFail)) {
      countFault(this.stats, 'sink-fail');
      this.trace.fault('sink-fail', `${this.operatorId} ${record.body.recordId}`);
      throw new ObolError('UNAVAILABLE', 'billing system unavailable');
    }
    this.deliveries++;
    const earlier = this.records.get(record.body.recordId);
    if (earlier && JSON.stringify(earlier) !== JSON.stringify(record)) this.conflicting.push(record.body.recordId);
    if (!earlier) this.records.set(record.body.recordId, record);
    if (this.prng.chance(this.rates.sinkLoseAck)) {
      countFault(this.stats, 'sink-lose-ack');
      this.trace.fault('sink-lose-ack', `${this.operatorId} ${record.body.recordId}`);
      throw new ObolError('TIMEOUT', 'billing system did not acknowledge');
    }
  }
}

export interface OperatorParty {
  spec: OperatorSpec;
  host: string;
  url: string;
  db: Db;
  sink: SimBillingSink;
  server: OperatorServer | undefined;
}

export interface ShopParty {
  spec: ShopSpec;
  host: string;
  url: string;
  moduleUrl: string;
  db: Db;
  products: Product[];
  catalogue: Catalogue;
  certs: { merchantCert: string; operatorCert: string; signingCert: string };
  app: FastifyInstance | undefined;
  agent: MerchantAgent | undefined;
  /** Gone (unreachable, not crashed) until this step. */
  awayUntil: number;
  /** Clock times it was away [from, to] (a merchant away past a deadline forfeits that claim: a stated rule). */
  away: Array<[number, number]>;
}

/** A wallet's store that refuses every call once its agent has crashed (nothing after a crash is written). */
class FencedStore implements WalletStore {
  alive = true;
  constructor(private readonly inner: WalletStore) {}
  /** The inner store's call, refused once the wallet has crashed. */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.alive) return Promise.reject(new WalletCrashed());
    return fn();
  }
  getAccount = () => this.call(() => this.inner.getAccount());
  putAccount = (a: Parameters<WalletStore['putAccount']>[0]) => this.call(() => this.inner.putAccount(a));
  getLogin = () => this.call(() => this.inner.getLogin());
  putLogin = (l: Parameters<WalletStore['putLogin']>[0]) => this.call(() => this.inner.putLogin(l));
  getTable = () => this.call(() => this.inner.getTable());
  putTable = (t: Parameters<WalletStore['putTable']>[0]) => this.call(() => this.inner.putTable(t));
  getTransaction = (id: string) => this.call(() => this.inner.getTransaction(id));
  putTransaction = (t: Parameters<WalletStore['putTransaction']>[0]) => this.call(() => this.inner.putTransaction(t));
  listTransactions = () => this.call(() => this.inner.listTransactions());
  addReceipt = (r: Parameters<WalletStore['addReceipt']>[0]) => this.call(() => this.inner.addReceipt(r));
  storeAccept = (...args: Parameters<WalletStore['storeAccept']>) => this.call(() => this.inner.storeAccept(...args));
  bookPurchase = (...args: Parameters<WalletStore['bookPurchase']>) => this.call(() => this.inner.bookPurchase(...args));
  listReceipts = (id?: string) => this.call(() => this.inner.listReceipts(id));
}

/** What a wallet's code sees after its process stopped: the simulator catches it, not the product. */
export class WalletCrashed extends Error {
  constructor() {
    super('the wallet crashed');
  }
}

export interface WalletParty {
  name: string;
  operatorId: string;
  currency: string;
  /** The wallet's smallest deposit (its deposit policy). */
  minimum: string | undefined;
  /** The durable store (IndexedDB in the extension): survives crashes. */
  store: MemoryWalletStore;
  fenced: FencedStore;
  agent: CustomerAgent;
  customerId: string;
  funded: Amount;
  /** Restarted, and recover() not run yet. */
  needsRecover: boolean;
  /** Never comes back (a wallet that never reports). */
  abandoned: boolean;
}

/** The whole system of one seed: two operators, two shops, the wallets, the network. */
export class World implements NetworkHosts {
  readonly operators = new Map<string, OperatorParty>();
  readonly shops = new Map<string, ShopParty>();
  readonly wallets: WalletParty[] = [];
  net!: SimNetwork;
  step = 0;

  constructor(
    readonly keys: KeyMaterial,
    readonly clock: ManualClock,
    readonly prng: Prng,
    readonly stats: RunStats,
    readonly trace: Trace,
  ) {}

  // ── the network's view ────────────────────────────────────────────────────────────────

  partyOf(host: string): string | undefined {
    for (const op of this.operators.values()) if (op.host === host) return op.spec.id;
    for (const shop of this.shops.values()) if (shop.host === host) return shop.spec.merchantId;
    return undefined;
  }

  serverOf(host: string): { party: string; app: FastifyInstance } | undefined {
    for (const op of this.operators.values()) if (op.host === host) return op.server ? { party: op.spec.id, app: op.server.app } : undefined;
    for (const shop of this.shops.values()) {
      if (shop.host === host) return shop.app && shop.awayUntil <= this.step ? { party: shop.spec.merchantId, app: shop.app } : undefined;
    }
    return undefined;
  }

  isWallet(party: string): boolean {
    return party.startsWith('wallet-');
  }

  async crash(party: string): Promise<void> {
    const op = this.operators.get(party);
    if (op) return this.restartOperator(op);
    const shop = this.shops.get(party);
    if (shop) return this.restartShop(shop);
    throw new Error(`no party ${party}`);
  }

  /** Parties that handled something since the last audit. */
  readonly touched = new Set<string>();

  touch(party: string): void {
    this.touched.add(party);
  }

  async settle(party: string): Promise<void> {
    await this.shops.get(party)?.agent?.settled();
  }

  crashWallet(party: string): void {
    const w = this.wallets.find((x) => x.name === party);
    if (!w) throw new Error(`no wallet ${party}`);
    w.fenced.alive = false;
  }

  /**
   * Time passes: the clock moves in slices of at most a minute, and after each slice the periodic
   * work of every party that is up runs as it would on its timer (the merchant module's session
   * sweep, the operator's deadline settlement and release of stalled initiations). A merchant
   * that is away does not run its timer.
   */
  async passTime(ms: number): Promise<void> {
    const SLICE = 60_000;
    while (ms > 0) {
      const slice = Math.min(ms, SLICE);
      this.clock.advance(slice);
      ms -= slice;
      for (const shop of this.shops.values()) {
        if (!shop.agent || shop.awayUntil > this.step) continue;
        await shop.agent.sweep();
        await shop.agent.settled();
      }
      for (const op of this.operators.values()) {
        this.touch(op.spec.id);
        await settleDeadlines(op.server!.ctx);
        await releaseStalledInitiations(op.server!.ctx);
      }
    }
  }

  /** Shops whose time away is over come back (their away interval ends now). */
  returnShops(): void {
    for (const shop of this.shops.values()) {
      const last = shop.away[shop.away.length - 1];
      if (last && last[1] === Number.POSITIVE_INFINITY && shop.awayUntil <= this.step) last[1] = this.clock.now();
    }
  }

  // ── parties ───────────────────────────────────────────────────────────────────────────

  async start(shoppers: number): Promise<void> {
    for (const spec of OPERATORS) {
      const db = this.keys.dbs.get(spec.id)!;
      await resetDb(db);
      const host = `${spec.id}.sim`;
      const op: OperatorParty = { spec, host, url: `http://${host}`, db, sink: new SimBillingSink(this.prng.fork(), this.stats, this.trace, spec.id), server: undefined };
      this.operators.set(spec.id, op);
      await this.startOperatorServer(op);
    }
    for (const spec of SHOPS) {
      const db = this.keys.dbs.get(spec.merchantId)!;
      await resetDb(db);
      const host = `${spec.merchantId}.sim`;
      const products = catalogueFor(spec.merchantId, spec.currency);
      const shop: ShopParty = {
        spec,
        host,
        url: `http://${host}`,
        moduleUrl: `http://${host}/obol`,
        db,
        products,
        catalogue: memoryCatalogue(products),
        certs: { merchantCert: '', operatorCert: '', signingCert: '' },
        app: undefined,
        agent: undefined,
        awayUntil: 0,
        away: [],
      };
      const op = this.operators.get(spec.operatorId)!;
      const reg = await this.admin(op, OperatorPaths.adminMerchants, {
        merchantId: spec.merchantId,
        publicKey: this.keys.shopKeys.get(spec.merchantId)!.publicKeySpki,
        origins: [shop.url],
        url: shop.moduleUrl,
        name: `Shop ${spec.merchantId}`,
      });
      checkSchema(RegisterMerchantResponse, reg, 'merchant registration');
      shop.certs = { merchantCert: reg.merchantCert, operatorCert: reg.operatorCert, signingCert: reg.signingCert };
      this.shops.set(spec.merchantId, shop);
      await this.startShopServer(shop);
    }
    for (let i = 0; i < shoppers; i++) await this.addWallet(OPERATORS[i % OPERATORS.length]!);
  }

  private async startOperatorServer(op: OperatorParty): Promise<void> {
    const config: OperatorConfig = {
      operatorId: op.spec.id,
      name: op.spec.name,
      currency: op.spec.currency,
      port: 0,
      keyDir: '',
      peers: Object.fromEntries(OPERATORS.map((o) => [o.id, `http://${o.id}.sim`])),
      rates: op.spec.rates,
      clearingGraceSec: 300,
      demo: true,
      adminToken: ADMIN_TOKEN,
      rateLimits: NO_RATE_LIMITS,
    };
    op.server = await startOperator({
      config,
      identity: this.keys.identities.get(op.spec.id)!,
      sealKeys: this.keys.operatorSeals.get(op.spec.id)!,
      clock: this.clock,
      db: op.db,
      timers: false,
      logger: false,
      sinks: [op.sink],
      http: this.net.httpFor(op.spec.id),
      unlistenedUrl: op.url,
    });
  }

  private async startShopServer(shop: ShopParty): Promise<void> {
    const op = this.operators.get(shop.spec.operatorId)!;
    const http = this.net.httpFor(shop.spec.merchantId);
    const agent = await MerchantAgent.open({
      merchantId: shop.spec.merchantId,
      name: `Shop ${shop.spec.merchantId}`,
      key: this.keys.shopKeys.get(shop.spec.merchantId)!,
      merchantCert: shop.certs.merchantCert,
      operatorCert: shop.certs.operatorCert,
      operatorSigningCert: shop.certs.signingCert,
      operatorId: shop.spec.operatorId,
      operatorUrl: op.url,
      currency: shop.spec.currency,
      origins: [shop.url],
      catalogue: shop.catalogue,
      db: shop.db,
      sealKeys: this.keys.shopSeals.get(shop.spec.merchantId)!,
      clock: this.clock,
      http: (url, body) => http.post(url, body),
    });
    const app = Fastify({ logger: false });
    await app.register(merchantModule, { prefix: '/obol', agent, sweepIntervalMs: 0 });
    await app.ready();
    shop.agent = agent;
    shop.app = app;
  }

  /** An operator crashes and restarts on its database: in-memory caches, peers and keys are gone. */
  async restartOperator(op: OperatorParty): Promise<void> {
    const old = op.server;
    op.server = undefined;
    // Nothing is in flight at this operator (the network crashes only idle parties): closing
    // drops its objects; the database stays as it is.
    await old?.app.close();
    await this.startOperatorServer(op);
  }

  async restartShop(shop: ShopParty): Promise<void> {
    const old = { app: shop.app, agent: shop.agent };
    shop.app = undefined;
    shop.agent = undefined;
    // Background reports the old process had started die with it (they are only in memory):
    // they are awaited here so none of them runs on after the restart, then the process is gone.
    await old.agent?.settled();
    await old.app?.close();
    await this.startShopServer(shop);
  }

  async addWallet(op: OperatorSpec): Promise<WalletParty> {
    const name = `wallet-${this.wallets.length}`;
    const store = new MemoryWalletStore();
    const fenced = new FencedStore(store);
    // Half the wallets open deposits of just the first price (a deposit per purchase or two), half
    // a few prices' worth (several purchases per deposit, then renewal).
    const minimum = this.wallets.length % 2 === 0 ? undefined : op.currency === 'SEK' ? 'SEK:3.00' : 'EUR:0.30';
    const agent = this.newAgent(name, fenced, minimum);
    const operator = this.operators.get(op.id)!;
    const account = await agent.register(operator.url);
    const funded = parseAmount(`${op.currency}:${op.currency === 'SEK' ? '5000.00' : '500.00'}`);
    await this.admin(operator, OperatorPaths.adminFund, { customerId: account.customerId, amount: `${op.currency}:${op.currency === 'SEK' ? '5000.00' : '500.00'}` });
    const w: WalletParty = { name, operatorId: op.id, currency: op.currency, minimum, store, fenced, agent, customerId: account.customerId, funded, needsRecover: false, abandoned: false };
    this.wallets.push(w);
    return w;
  }

  private newAgent(name: string, store: WalletStore, minimum: string | undefined): CustomerAgent {
    return new CustomerAgent({
      store,
      http: this.net.httpFor(name),
      clock: this.clock,
      // Small deposits: each is used up after a purchase or a few, so a run makes many deposits
      // per logon (clearing and renewal again and again).
      depositPolicy: { timeoutSec: 600, ...(minimum ? { minimum } : {}) },
      trustedRoots: [certToBase64(this.keys.root.cert)],
    });
  }

  /** The wallet's process starts again on its store (the extension's service worker restarting). */
  restartWallet(w: WalletParty): void {
    w.fenced.alive = false;
    w.fenced = new FencedStore(w.store);
    w.agent = this.newAgent(w.name, w.fenced, w.minimum);
    w.needsRecover = true;
  }

  /** An operator's administration, outside the simulated network (the operator's own staff). */
  async admin(op: OperatorParty, path: string, body?: unknown): Promise<unknown> {
    this.touch(op.spec.id);
    const res = await op.server!.app.inject({
      method: body === undefined ? 'GET' : 'POST',
      url: path,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    if (res.statusCode >= 300) throw new Error(`admin ${path}: HTTP ${res.statusCode} ${res.body}`);
    return res.json();
  }

  async close(): Promise<void> {
    for (const shop of this.shops.values()) {
      await shop.agent?.settled();
      await shop.app?.close();
    }
    for (const op of this.operators.values()) await op.server?.app.close();
  }
}
