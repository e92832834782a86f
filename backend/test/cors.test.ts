import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterPaths, MerchantPaths, OperatorPaths } from '@obol/protocol/api';
import { systemClock } from '@obol/protocol/clock';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import type { FastifyInstance } from 'fastify';
import { Arbiter } from '../src/arbiter/arbiter.ts';
import { type ArbiterServer, startArbiterServer } from '../src/arbiter/server.ts';
import { createOperatorIdentity, createRoot } from '../src/operator/identity.ts';
import { type OperatorServer, startOperator } from '../src/operator/server.ts';
import { openDb } from '../src/store/db.ts';
import { type Shop, startShop } from '../src/world/shop.ts';
import { SealKeys } from '../src/store/sealedColumn.ts';

/**
 * CORS only where a browser calls (the wallet's service worker, the widget): never on the
 * administration of the operator or of the shop, never on the routes between servers.
 */
const ORIGIN = 'https://evil.example';
const ADMIN = 'admin-token-0123456789';
const SHOP_ADMIN = 'shop-admin-token-0123456789';

let operator: OperatorServer;
let shop: Shop;
let arbiter: ArbiterServer;
beforeAll(async () => {
  const now = systemClock.now();
  const root = await createRoot('CORS Root', now);
  const { identity } = await createOperatorIdentity(root, 'op-cors', now);
  operator = await startOperator({
    config: { operatorId: 'op-cors', name: 'CORS', currency: 'EUR', port: 0, keyDir: '', peers: {}, rates: {}, adminToken: ADMIN, demo: true },
    identity,
    sealKeys: await SealKeys.ephemeral(),
    db: await openDb(),
    timers: false,
  });
  shop = await startShop({
    merchantId: 'cors.example',
    name: 'CORS Shop',
    operatorUrl: operator.url,
    operatorId: 'op-cors',
    currency: 'EUR',
    adminToken: ADMIN,
    shopAdminToken: SHOP_ADMIN,
    clock: systemClock,
    db: await openDb(),
    sweepIntervalMs: 0,
  });
  arbiter = await startArbiterServer(new Arbiter({ key: await keyHandle(await generateSigningKeyPair()), root: root.cert, operators: [operator.url] }));
}, 60_000);
afterAll(async () => {
  await arbiter?.close();
  await shop?.close();
  await operator?.close();
});

const concrete = (path: string) => path.replace(/:[a-zA-Z]+/g, 'x');

async function preflight(app: FastifyInstance, method: string, path: string) {
  return app.inject({
    method: 'OPTIONS',
    url: concrete(path),
    headers: { origin: ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': 'content-type, authorization' },
  });
}

async function call(app: FastifyInstance, method: 'GET' | 'POST', path: string, authorization?: string) {
  return app.inject({
    method,
    url: concrete(path),
    headers: { origin: ORIGIN, ...(authorization ? { authorization } : {}) },
    ...(method === 'POST' ? { payload: {} } : {}),
  });
}

const ADMIN_ROUTES = [
  ['POST', OperatorPaths.adminMerchants],
  ['POST', OperatorPaths.adminFund],
  ['POST', OperatorPaths.adminCreditLimit],
  ['GET', OperatorPaths.adminBalances],
  ['GET', OperatorPaths.adminAudit],
  ['GET', OperatorPaths.adminPositions],
  ['POST', OperatorPaths.adminSettleDeadlines],
] as const;
const SERVER_ROUTES = [
  ['POST', OperatorPaths.peerInitiate],
  ['POST', OperatorPaths.peerCustomerRecord],
  ['POST', OperatorPaths.peerClearing],
  ['GET', OperatorPaths.peerMerchant],
  ['POST', OperatorPaths.merchantRecord],
  ['POST', OperatorPaths.arbiterKey],
] as const;
const WALLET_ROUTES = [
  ['GET', OperatorPaths.info],
  ['GET', OperatorPaths.exchangeTable],
  ['POST', OperatorPaths.registerCustomer],
  ['POST', OperatorPaths.challenge],
  ['POST', OperatorPaths.login],
  ['GET', OperatorPaths.balance],
  ['POST', OperatorPaths.demoTopUp],
  ['POST', OperatorPaths.initiate],
  ['POST', OperatorPaths.customerRecord],
  ['GET', OperatorPaths.transaction],
  ['GET', OperatorPaths.merchantCertificate],
] as const;

describe('the operator', () => {
  it('administration: no CORS on a preflight, nor on a call with an Origin (with the right token or not)', async () => {
    for (const [method, path] of ADMIN_ROUTES) {
      const pre = await preflight(operator.app, method, path);
      expect(pre.headers['access-control-allow-origin'], `OPTIONS ${path}`).toBeUndefined();
      expect(pre.headers['access-control-allow-methods'], `OPTIONS ${path}`).toBeUndefined();
      for (const auth of [`Bearer ${ADMIN}`, undefined]) {
        const res = await call(operator.app, method, path, auth);
        expect(res.statusCode, `${method} ${path}`).not.toBe(404);
        expect(res.headers['access-control-allow-origin'], `${method} ${path}`).toBeUndefined();
      }
    }
    const audit = await call(operator.app, 'GET', OperatorPaths.adminAudit, `Bearer ${ADMIN}`);
    expect(audit.statusCode).toBe(200);
    expect(audit.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('routes between servers: no CORS', async () => {
    for (const [method, path] of SERVER_ROUTES) {
      expect((await preflight(operator.app, method, path)).headers['access-control-allow-origin'], path).toBeUndefined();
      expect((await call(operator.app, method, path)).headers['access-control-allow-origin'], path).toBeUndefined();
    }
  });

  it('wallet routes: a preflight allows any origin, the methods and headers the wallet sends; answers carry the header, refusals too', async () => {
    for (const [method, path] of WALLET_ROUTES) {
      const pre = await preflight(operator.app, method, path);
      expect(pre.statusCode, path).toBe(204);
      expect(pre.headers['access-control-allow-origin'], path).toBe('*');
      expect(pre.headers['access-control-allow-methods'], path).toContain(method);
      expect(pre.headers['access-control-allow-headers'], path).toContain('authorization');
      expect(pre.headers['access-control-allow-credentials'], path).toBeUndefined();
      expect((await call(operator.app, method, path)).headers['access-control-allow-origin'], `${method} ${path}`).toBe('*');
    }
    const table = await call(operator.app, 'GET', OperatorPaths.exchangeTable);
    expect(table.statusCode).toBe(200);
    expect(table.headers['access-control-allow-origin']).toBe('*');
    // Refused (401): still readable by the wallet.
    const balance = await call(operator.app, 'GET', OperatorPaths.balance);
    expect(balance.statusCode).toBe(401);
    expect(balance.headers['access-control-allow-origin']).toBe('*');
  });

  it('over real HTTP: a GET with an Origin on an admin route gets no access-control-allow-origin, on a wallet route it does', async () => {
    const admin = await fetch(`${operator.url}${OperatorPaths.adminBalances}`, { headers: { origin: ORIGIN, authorization: `Bearer ${ADMIN}` } });
    expect(admin.status).toBe(200);
    expect(admin.headers.get('access-control-allow-origin')).toBeNull();
    const wallet = await fetch(`${operator.url}${OperatorPaths.info}`, { headers: { origin: ORIGIN } });
    expect(wallet.status).toBe(200);
    expect(wallet.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('the merchant module', () => {
  const module = (path: string) => `/obol${path}`;
  it('its administration and the acquirer route: no CORS', async () => {
    for (const [method, path, auth] of [
      ['POST', MerchantPaths.adminProducts, `Bearer ${SHOP_ADMIN}`],
      ['POST', MerchantPaths.info, undefined],
    ] as const) {
      expect((await preflight(shop.app, method, module(path))).headers['access-control-allow-origin'], path).toBeUndefined();
      const res = await call(shop.app, method, module(path), auth);
      expect(res.statusCode, path).not.toBe(404);
      expect(res.headers['access-control-allow-origin'], path).toBeUndefined();
    }
  });

  it('what the wallet and the widget call: CORS', async () => {
    for (const [method, path] of [
      ['GET', MerchantPaths.merchant],
      ['GET', MerchantPaths.products],
      ['GET', MerchantPaths.product],
      ['GET', MerchantPaths.session],
      ['POST', MerchantPaths.order],
      ['POST', MerchantPaths.accept],
      ['POST', MerchantPaths.stop],
    ] as const) {
      const pre = await preflight(shop.app, method, module(path));
      expect(pre.statusCode, path).toBe(204);
      expect(pre.headers['access-control-allow-origin'], path).toBe('*');
      expect((await call(shop.app, method, module(path))).headers['access-control-allow-origin'], path).toBe('*');
    }
  });
});

describe('the arbiter', () => {
  it('no CORS', async () => {
    expect((await preflight(arbiter.app, 'POST', ArbiterPaths.judge)).headers['access-control-allow-origin']).toBeUndefined();
    expect((await call(arbiter.app, 'POST', ArbiterPaths.judge)).headers['access-control-allow-origin']).toBeUndefined();
  });
});
