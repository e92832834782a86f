import { ANNOUNCE_EVENT, BRIDGE_VERSION, PAGE_TO_WALLET, REQUEST_EVENT, WALLET_TO_PAGE } from '@obol/protocol/bridge';
import { type Clock, systemClock } from '@obol/protocol/clock';
import type { OperatorServer } from '../../backend/src/operator/server.ts';
import { startDemoWorld } from '../../backend/src/world/demoWorld.ts';
import type { Shop, ShopOptions } from '../../backend/src/world/shop.ts';
import type { World } from '../../backend/src/world/world.ts';
import { demoRootDir, ensureBuilt } from './build.ts';

/**
 * A real world for browser tests, in-process: the demo world (backend/src/world/demoWorld.ts) on
 * embedded databases and free ports, with the real clock (the browser has no other): Svea Bank
 * (op-sek, SEK), Banque Euro (op-eur, EUR), The Daily Obol (EUR news shop at op-eur, its real
 * pages with the widget) and Obol Downloads (SEK files shop at op-sek). The news shop also serves
 * `/bridge-test`: a plain page whose script speaks the page bridge without the widget.
 */
export interface TestWorld {
  world: World;
  sek: OperatorServer;
  eur: OperatorServer;
  /** The news shop. */
  shop: Shop;
  downloads: Shop;
  /** The news shop's bridge test page. */
  testPageUrl: string;
  adminToken: string;
  billingFile(operatorId: 'op-sek' | 'op-eur'): string;
  /** Admin calls on an operator (GET without body, POST with one). */
  admin(op: OperatorServer, path: string, body?: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export interface StartWorldOptions {
  clock?: Clock;
  /** Add more pages to the news shop (the widget's tests serve theirs here). */
  pages?: ShopOptions['pages'];
  /** The operators' exchange-table lifetime (default 3600 s; at least 10). */
  tableLifetimeSec?: number;
}

/** The shops serve widget/dist/obol-widget.js: built here when missing or older than its sources. */
export function ensureWidgetBuilt(): void {
  ensureBuilt('widget', 'widget/dist/obol-widget.js', ['widget/src', 'protocol/src']);
}

export async function startWorld(opts: StartWorldOptions = {}): Promise<TestWorld> {
  ensureWidgetBuilt();
  const demo = await startDemoWorld({
    ...(opts.tableLifetimeSec !== undefined ? { tableLifetimeSec: opts.tableLifetimeSec } : {}),
    clock: opts.clock ?? systemClock,
    timers: false,
    // The root the built extension trusts (made here if the build has not made it yet).
    rootDir: demoRootDir(),
    adminToken: 'e2e-admin-token-0123456789',
    newsPages: async (app, agent) => {
      // The shop's pages run under a strict CSP, so the test page's script is a file of its own.
      app.get('/bridge-test', async (_req, reply) => reply.type('text/html; charset=utf-8').send(bridgeTestPage()));
      app.get('/bridge-test.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(bridgeTestScript()));
      await opts.pages?.(app, agent);
    },
  });
  const admin = async (op: OperatorServer, path: string, body?: unknown) => {
    const res = await op.app.inject({
      method: body === undefined ? 'GET' : 'POST',
      url: path,
      headers: { authorization: `Bearer ${demo.adminToken}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return res.json();
  };
  return {
    world: demo.world,
    sek: demo.sek,
    eur: demo.eur,
    shop: demo.news,
    downloads: demo.downloads,
    testPageUrl: `${demo.news.url}/bridge-test`,
    adminToken: demo.adminToken,
    billingFile: demo.billingFile,
    admin,
    close: () => demo.close(),
  };
}

/**
 * The smallest page that speaks the bridge: `window.obolCall(method, params)` posts a request and
 * resolves with the wallet's answer message; `window.obolWallets` collects announcements.
 * `window.armClick(calls)` makes the next click on the #act button send those calls (all of them
 * in that one click handler, as a page script riding on one gesture would); their answers are in
 * `window.clickAnswers`. A page called from a test's `page.evaluate` has no gesture; a Playwright
 * click on #act is a real one.
 */
export function bridgeTestPage(): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Obol bridge test page</title></head>
<body><h1>The Daily Obol — bridge test</h1><button id="act" type="button">Act</button><pre id="log"></pre>
<script src="/bridge-test.js"></script></body></html>`;
}

export function bridgeTestScript(): string {
  const c = JSON.stringify({ ANNOUNCE_EVENT, REQUEST_EVENT, PAGE_TO_WALLET, WALLET_TO_PAGE, BRIDGE_VERSION });
  return `const C = ${c};
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
  // An opaque document (a sandboxed frame) cannot name its own origin: it can only post to '*'.
  window.postMessage({ channel: C.PAGE_TO_WALLET, version: C.BRIDGE_VERSION, id, method, params }, self.origin === 'null' ? '*' : location.origin);
});
let armed = [];
window.armClick = (calls) => { armed = calls; window.clickAnswers = undefined; };
const act = document.getElementById('act');
if (act) act.addEventListener('click', () => {
  const calls = armed;
  armed = [];
  window.clickAnswers = Promise.all(calls.map(([m, p]) => window.obolCall(m, p)));
});
window.dispatchEvent(new Event(C.REQUEST_EVENT));
`;
}
