import { ANNOUNCE_EVENT, BRIDGE_VERSION, PAGE_TO_WALLET, REQUEST_EVENT, WALLET_TO_PAGE } from '@obol/protocol/bridge';
import { type Clock, systemClock } from '@obol/protocol/clock';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlFileSink } from '../../backend/src/billing/index.ts';
import { newsCatalogue } from '../../backend/src/demo/catalogues.ts';
import type { OperatorServer } from '../../backend/src/operator/server.ts';
import { openDb } from '../../backend/src/store/db.ts';
import { type Shop, type ShopOptions, startShop } from '../../backend/src/world/shop.ts';
import { type World, startOperators } from '../../backend/src/world/world.ts';

/**
 * A real world for browser tests, in-process: a SEK operator (the shopper's bank), a EUR operator
 * (the merchant's bank) and a EUR news shop at the EUR operator, on embedded databases and free
 * ports, with the real clock (the browser has no other). The shop also serves `/bridge-test`: a
 * plain page whose script speaks the page bridge (the real widget is tested on its own).
 */
export interface TestWorld {
  world: World;
  sek: OperatorServer;
  eur: OperatorServer;
  shop: Shop;
  /** The shop's bridge test page. */
  testPageUrl: string;
  adminToken: string;
  /** Admin calls on an operator (GET without body, POST with one). */
  admin(op: OperatorServer, path: string, body?: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export interface StartWorldOptions {
  clock?: Clock;
  /** Add more pages to the shop (the widget's tests serve theirs here). */
  pages?: ShopOptions['pages'];
}

export async function startWorld(opts: StartWorldOptions = {}): Promise<TestWorld> {
  const clock = opts.clock ?? systemClock;
  const dbs = { sek: await openDb(), eur: await openDb(), shop: await openDb() };
  const billingDir = mkdtempSync(join(tmpdir(), 'obol-billing-'));
  const world = await startOperators(
    [
      { operatorId: 'op-sek', name: 'Svea Bank', currency: 'SEK', rates: { EUR: '0.0874', USD: '0.0951' }, db: dbs.sek, sinks: [new JsonlFileSink(join(billingDir, 'sek.jsonl'))] },
      { operatorId: 'op-eur', name: 'Banque Euro', currency: 'EUR', rates: { SEK: '11.44', USD: '1.088' }, db: dbs.eur, sinks: [new JsonlFileSink(join(billingDir, 'eur.jsonl'))] },
    ],
    { clock },
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
    pages: async (app, agent) => {
      app.get('/bridge-test', async (_req, reply) => reply.type('text/html; charset=utf-8').send(bridgeTestPage()));
      await opts.pages?.(app, agent);
    },
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
    world,
    sek,
    eur,
    shop,
    testPageUrl: `${shop.url}/bridge-test`,
    adminToken: world.adminToken,
    admin,
    close: async () => {
      await shop.close();
      await world.close();
      for (const db of Object.values(dbs)) await db.close();
      rmSync(billingDir, { recursive: true, force: true });
    },
  };
}

/**
 * The smallest page that speaks the bridge: `window.obolCall(method, params)` posts a request and
 * resolves with the wallet's answer message; `window.obolWallets` collects announcements.
 */
export function bridgeTestPage(): string {
  const c = JSON.stringify({ ANNOUNCE_EVENT, REQUEST_EVENT, PAGE_TO_WALLET, WALLET_TO_PAGE, BRIDGE_VERSION });
  return `<!doctype html><html><head><meta charset="utf-8"><title>Obol bridge test page</title></head>
<body><h1>The Daily Obol — bridge test</h1><pre id="log"></pre>
<script>
const C = ${c};
window.obolWallets = [];
window.addEventListener(C.ANNOUNCE_EVENT, (e) => window.obolWallets.push(e.detail.info));
const pending = new Map();
let next = 0;
window.addEventListener('message', (e) => {
  const m = e.data;
  if (e.source !== window || !m || m.channel !== C.WALLET_TO_PAGE || m.version !== C.BRIDGE_VERSION) return;
  const resolve = pending.get(m.id);
  if (resolve) { pending.delete(m.id); resolve(m); }
});
window.obolCall = (method, params) => new Promise((resolve) => {
  const id = 'req' + (++next) + '_' + Math.random().toString(36).slice(2, 10);
  pending.set(id, resolve);
  window.postMessage({ channel: C.PAGE_TO_WALLET, version: C.BRIDGE_VERSION, id, method, params }, location.origin);
});
window.dispatchEvent(new Event(C.REQUEST_EVENT));
</script></body></html>`;
}
