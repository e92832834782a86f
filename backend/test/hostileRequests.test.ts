import { connect } from 'node:net';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { errorName } from '@obol/protocol/errors';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { type TwoOperators, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * Requests a hostile or broken client sends — NUL characters in ids, paths and headers, names
 * that are properties of every JavaScript object, numbers past the 64-bit limit, wrong types,
 * wrong content types, broken JSON — to every route of the operator and of the merchant module.
 * None may get a 5xx: each is refused with a 4xx and a code from the catalogue, and the ledgers
 * are as they were.
 */
const SHOP_ADMIN = 'shop-admin-token-0123456789';

type Route = { app: 'sek' | 'shop'; method: 'GET' | 'POST'; path: string; auth?: 'operator' | 'shop' | 'session' };
const routes: Route[] = [
  ...Object.entries(OperatorPaths).map(([name, path]): Route => {
    const method = /^(health|openapi|info|exchangeTable|balance|transaction|merchantCertificate|peerMerchant|adminBalances|adminAudit|adminPositions)$/.test(name)
      ? 'GET'
      : 'POST';
    const auth = name.startsWith('admin') ? 'operator' : name === 'balance' || name === 'transaction' || name === 'demoTopUp' ? 'session' : undefined;
    return { app: 'sek', method, path, ...(auth ? { auth } : {}) };
  }),
  ...[
    ['GET', '/merchant'],
    ['GET', '/products'],
    ['GET', '/products/:productId'],
    ['GET', '/sessions/:transactionId'],
    ['POST', '/info'],
    ['POST', '/order'],
    ['POST', '/accept'],
    ['POST', '/stop'],
  ].map(([method, path]): Route => ({ app: 'shop', method: method as 'GET' | 'POST', path: `/obol${path}` })),
  { app: 'shop', method: 'POST', path: '/obol/admin/products', auth: 'shop' },
];

const PROTO_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__'];
/** Strings as they would arrive decoded: NUL and other controls, prototype names, long, odd Unicode. */
const hostileString = fc.oneof(
  fc.constantFrom(...PROTO_NAMES),
  fc.constantFrom('\u0000', 'a\u0000b', 'op-sek.1.1\u0000', '\u0001\u0002', 'x\u007f', '\ud800', '\uffff', '%00', '../..', 'a'.repeat(10_000)),
  fc.string({ unit: fc.constantFrom('a', '0', '.', '-', '_', ':', '\u0000', '\u001f', '\ud83d', 'é'), maxLength: 40 }),
  fc.constantFrom('SEK:92233720368547758.07', 'SEK:92233720368547758.08', 'SEK:999999999999999999.99', 'EUR:-0.01', 'SEK:1e5', 'SEK:0.001'),
);
const hostileNumber = fc.oneof(
  fc.constantFrom(2 ** 63, 2 ** 64, -(2 ** 63), 1e308, -1, 0.5, Number.MAX_SAFE_INTEGER + 2),
  fc.integer(),
);
/** Field names the routes read, so hostile values reach the code behind the schema checks. */
const FIELDS = [
  'customerId', 'publicKey', 'displayName', 'challenge', 'amount', 'limit', 'accountId', 'merchantId', 'origins', 'url', 'name',
  'msgId', 'sessionId', 'transactionId', 'kid', 'v', 'type', 'body', 'sig', 'productId', 'price', 'content', 'title',
];
const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    hostileNumber,
    fc.constantFrom(null, true, false),
    fc.array(tie('value'), { maxLength: 3 }),
    tie('object'),
  ),
  object: fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS, ...PROTO_NAMES), hostileString), tie('value'), { maxKeys: 5 }),
})).value;
/** Signed-message shapes with hostile contents: they pass the first look and go further in. */
const signedLike = fc.record({
  v: fc.oneof(fc.constant(1), hostileValue),
  type: fc.oneof(
    fc.constantFrom('wallet.login', 'wallet.initiate', 'wallet.record', 'merchant.record', 'am.initiate', 'acquirer.clearing', 'wallet.order', 'wallet.accept', 'acquirer.info', 'arbiter.keyRequest'),
    hostileString,
  ),
  kid: fc.oneof(hostileString, fc.constantFrom('a'.repeat(22))),
  body: fc.oneof(fc.dictionary(fc.constantFrom(...FIELDS), hostileValue, { maxKeys: 8 }), hostileValue),
  sig: fc.oneof(hostileString, fc.constant('A'.repeat(86))),
});
const payloads = fc.oneof(
  signedLike.map((v) => ({ contentType: 'application/json', body: JSON.stringify(v) })),
  fc.dictionary(fc.constantFrom(...FIELDS), hostileValue, { maxKeys: 6 }).map((v) => ({ contentType: 'application/json', body: JSON.stringify(v) })),
  hostileValue.map((v) => ({ contentType: 'application/json', body: JSON.stringify(v) ?? 'null' })),
  fc.constantFrom(
    { contentType: 'application/json', body: '{"customerId": "a' },
    { contentType: 'application/json', body: '{"customerId": "\\u0000"}' },
    { contentType: 'application/json', body: '{"__proto__": {"admin": true}, "customerId": "x"}' },
    { contentType: 'application/json', body: '{"constructor": {"prototype": {"x": 1}}}' },
    { contentType: 'application/json', body: '\u0000' },
    { contentType: 'application/json', body: '' },
    { contentType: 'application/json', body: '[]'.repeat(3) },
    { contentType: 'application/json', body: `{"amount": ${'9'.repeat(400)}}` },
    { contentType: 'text/plain', body: 'hello' },
    { contentType: 'application/x-www-form-urlencoded', body: 'customerId=%00' },
    { contentType: 'application/json; charset=latin1', body: '{}' },
    { contentType: 'multipart/form-data; boundary=x', body: '--x--' },
  ),
);
const paramValue = fc.oneof(
  fc.constantFrom(...PROTO_NAMES),
  fc.constantFrom('%00', 'a%00b', '%ZZ', '%', '%2e%2e', '%C0%80', '%ED%A0%80', '%FF', 'op-sek%001', 'op-sek.1.1%00'),
  hostileString.map((s) => {
    try {
      return encodeURIComponent(s.slice(0, 200));
    } catch {
      return '%ED%A0%80'; // a lone surrogate, as its (invalid) UTF-8 bytes
    }
  }),
);

describe.each(['PGlite', 'PostgreSQL'] as const)('hostile requests on %s', (engine) => {
  let t: TwoOperators;
  let token = '';
  beforeAll(async () => {
    t = await twoOperators(engine, { shopAdminToken: SHOP_ADMIN });
    const shopper = t.newShopper();
    await shopper.register(t.sek.url);
    token = (await shopper.login()).token;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  const appOf = (r: Route): FastifyInstance => (r.app === 'sek' ? t.sek.app : t.shop.app);
  const authOf = (r: Route): Record<string, string> =>
    r.auth === 'operator'
      ? { authorization: `Bearer ${t.world.adminToken}` }
      : r.auth === 'shop'
        ? { authorization: `Bearer ${SHOP_ADMIN}` }
        : r.auth === 'session'
          ? { authorization: `Bearer ${token}` }
          : {};
  const ledgers = async () => [
    await t.admin(t.sek, OperatorPaths.adminBalances),
    await t.admin(t.eur, OperatorPaths.adminBalances),
    await t.admin(t.sek, OperatorPaths.adminAudit),
    await t.admin(t.eur, OperatorPaths.adminAudit),
  ];
  /** A refusal with a catalogue code, never a 5xx. */
  function expectCatalogueRefusal(res: { statusCode: number; body: string }, what: string) {
    expect(res.statusCode, `${what} → ${res.statusCode} ${res.body.slice(0, 300)}`).toBeLessThan(500);
    if (res.statusCode >= 400) {
      const code = (JSON.parse(res.body) as { error?: { code?: number } }).error?.code;
      expect(errorName(Number(code)), `${what} → ${res.body.slice(0, 300)}`).toBeDefined();
    }
  }

  it('the examples: NUL in ids, a taken public key, the 64-bit limit, __proto__ as an operator', async () => {
    const before = await ledgers();
    const inject = (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
      t.sek.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });

    for (const res of [
      await inject('POST', OperatorPaths.challenge, { customerId: 'a\u0000b' }),
      await inject('POST', OperatorPaths.login, { v: 1, type: 'wallet.login', kid: 'k\u0000', body: {}, sig: 'AA' }),
      await inject('GET', '/v1/transactions/op-sek.1.1%00', undefined, { authorization: `Bearer ${token}` }),
      await inject('GET', '/v1/peer/merchants/news%00example'),
      await inject('GET', '/v1/balance', undefined, { authorization: 'Bearer \u0000' }),
    ]) {
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expectCatalogueRefusal(res, res.body);
    }

    // Another merchant with the shop's public key: CONFLICT, not a constraint error.
    const [shopKey] = await t.eur.ctx.db.query<{ public_key: string }>(`SELECT public_key FROM merchants WHERE id = 'news.example'`);
    const taken = await t.eur.app.inject({
      method: 'POST',
      url: OperatorPaths.adminMerchants,
      headers: { authorization: `Bearer ${t.world.adminToken}` },
      payload: { merchantId: 'copy.example', publicKey: shopKey!.public_key, origins: ['https://copy.example'], url: 'https://copy.example/obol' },
    });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ error: { name: 'CONFLICT' } });

    // The 64-bit limit: one funding up to it, then more is refused as an amount, not a crash.
    const key = await keyHandle(await generateSigningKeyPair());
    const { customerId } = (await inject('POST', OperatorPaths.registerCustomer, { publicKey: key.publicKeySpki })).json() as { customerId: string };
    const fund = (amount: string) => t.sek.app.inject({
      method: 'POST',
      url: OperatorPaths.adminFund,
      headers: { authorization: `Bearer ${t.world.adminToken}` },
      payload: { customerId, amount },
    });
    expect((await fund('SEK:999999999999999999.99')).json()).toMatchObject({ error: { name: 'INVALID_AMOUNT' } });
    expect((await fund('SEK:92233720368547758.07')).statusCode).toBe(200);
    const over = await fund('SEK:0.01');
    expect(over.statusCode).toBe(400);
    expect(over.json()).toMatchObject({ error: { name: 'INVALID_AMOUNT' } });
    expect(await t.admin(t.sek, OperatorPaths.adminAudit)).toMatchObject({ ok: true });

    // Prototype names are not operators, merchants or peers.
    for (const name of PROTO_NAMES) {
      const res = await inject('GET', `/v1/merchants/${name}/x`);
      expect(res.statusCode, `${name}: ${res.body}`).toBe(404);
      expect(res.json()).toMatchObject({ error: { name: 'UNKNOWN_OPERATOR' } });
    }
    // The funding above is the only change: the merchant's operator is as it was.
    const after = await ledgers();
    expect([after[1], after[3]]).toEqual([before[1], before[3]]);
  });

  it('generated hostile requests to every route: never a 5xx, always a catalogue code, the ledgers unchanged', async () => {
    const before = await ledgers();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.array(paramValue, { minLength: 2, maxLength: 2 }),
        payloads,
        fc.oneof(
          fc.constant<Record<string, string>>({}),
          fc.record({ 'x-obol': hostileString.map((s) => s.slice(0, 100)) }),
          hostileString.map((s) => ({ authorization: `Bearer ${s.slice(0, 100)}` })),
        ),
        fc.boolean(),
        async (route, params, payload, headers, withAuth) => {
          let i = 0;
          const url = route.path.replace(/:[A-Za-z]+/g, () => params[i++]!);
          const res = await appOf(route).inject({
            method: route.method,
            url,
            headers: { ...headers, ...(withAuth ? authOf(route) : {}), ...(route.method === 'POST' ? { 'content-type': payload.contentType } : {}) },
            ...(route.method === 'POST' ? { payload: payload.body } : {}),
          });
          expectCatalogueRefusal(res, `${route.method} ${url} ${route.method === 'POST' ? payload.body.slice(0, 200) : ''}`);
        },
      ),
      { numRuns: Number(process.env.OBOL_FUZZ_RUNS ?? (engine === 'PGlite' ? 600 : 300)) },
    );
    expect(await ledgers()).toEqual(before);
  }, 240_000);

  it('NUL and controls in the raw request line and headers are refused with a catalogue code', async () => {
    for (const app of [t.sek, t.shop]) {
      const { hostname, port } = new URL(app.url);
      for (const head of [
        'GET /v1/operator\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /v1/balance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\u0000b\r\n\r\n',
        'GET /v1/balance HTTP/1.1\r\nHost: x\r\nX-Obol: \u0001\r\n\r\n',
        'POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      ]) {
        const answer = await new Promise<string>((resolve) => {
          let text = '';
          const socket = connect(Number(port), hostname, () => socket.write(head));
          socket.on('data', (d) => {
            text += d.toString('utf8');
          });
          socket.on('error', () => resolve(text));
          socket.on('close', () => resolve(text));
          setTimeout(() => socket.destroy(), 2_000);
        });
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
        expect(status, JSON.stringify(head) + answer).toBeGreaterThanOrEqual(400);
        expect(status, JSON.stringify(head) + answer).toBeLessThan(500);
        const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
        expect(errorName(Number((JSON.parse(body) as { error?: { code?: number } }).error?.code)), answer).toBeDefined();
      }
    }
  });
});
