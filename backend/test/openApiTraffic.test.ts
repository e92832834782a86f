import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterPaths, MerchantPaths, OperatorPaths } from '@obol/protocol/api';
import { signMessage } from '@obol/protocol/signed';
import { randomId, toBase64Url } from '@obol/protocol/webcrypto';
import { Arbiter, createArbiterKeyDir } from '../src/arbiter/arbiter.ts';
import { type ArbiterServer, startArbiterServer } from '../src/arbiter/server.ts';
import { getJson, postJson } from '../src/http/client.ts';
import { type Exchange, observeTraffic } from '../src/http/traffic.ts';
import { requestStatement } from '../src/merchant/statement.ts';
import { createRoot } from '../src/operator/identity.ts';
import { TEST_START, type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * Issue 15 item 6, done when "an OpenAPI validator accepts every request and response of a full
 * simulated session": real servers (two operators, a shop), a whole session — registration,
 * logon, funding, purchases with key releases, a file, the end and the clearing, the session read,
 * a dispute's key release to an arbiter, the merchant's statement, administration — with every
 * exchange recorded as the servers answered it, then checked against each server's own
 * `/openapi.json`: the document by an OpenAPI 3.1 validator, the bodies by a JSON Schema 2020-12
 * validator. Refusals are part of the session and are checked too (the catalogue's error body).
 */
interface Operation {
  parameters?: Array<{ name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: object }>;
  requestBody?: { required?: boolean; content: Record<string, { schema: object }> };
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

const SHOP_TOKEN = 'shop-admin-token-for-the-openapi-test';

describe('every request and answer of a full session matches /openapi.json', () => {
  let t: TwoOperators;
  let keyDir: string;
  let arbiterServer: ArbiterServer | undefined;
  const exchanges: Exchange[] = [];
  let stopObserving: () => void;

  beforeAll(async () => {
    const root = await createRoot('Obol Interbank Root', TEST_START);
    keyDir = await mkdtemp(join(tmpdir(), 'obol-openapi-arbiter-'));
    const { publicKey } = await createArbiterKeyDir(keyDir, root.cert);
    // Recording from before the servers start: the shop's own registration is traffic too.
    stopObserving = observeTraffic((e) => exchanges.push(e));
    t = await twoOperators('PGlite', { root, arbiters: { nbcp: publicKey }, shopAdminToken: SHOP_TOKEN });
  }, 180_000);
  afterAll(async () => {
    stopObserving?.();
    await arbiterServer?.close();
    await t?.close();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it('runs the session, then validates each exchange', async () => {
    // ── the session ──────────────────────────────────────────────────────────────────────────
    const shopper = t.newShopper('SEK:1.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    const fund = { customerId: account.customerId, amount: 'SEK:20.00' };
    const fundKey = randomId();
    const admin = { authorization: `Bearer ${t.world.adminToken}` };
    await postJson(`${t.sek.url}${OperatorPaths.adminFund}`, fund, { headers: { ...admin, 'idempotency-key': fundKey } });
    await postJson(`${t.sek.url}${OperatorPaths.adminFund}`, fund, { headers: { ...admin, 'idempotency-key': fundKey } });
    await expect(postJson(`${t.sek.url}${OperatorPaths.adminFund}`, { ...fund, amount: 'SEK:1.00' }, { headers: { ...admin, 'idempotency-key': fundKey } })).rejects.toMatchObject({
      name: 'CONFLICT',
    });
    await shopper.balance();
    await shopper.exchangeTable();

    // A file: a product of bytes added by the shop's administration, then bought.
    const file = new Uint8Array(2048).map((_, i) => (i * 7) % 256);
    await postJson(
      `${t.shop.moduleUrl}${MerchantPaths.adminProducts}`,
      { productId: 'field-data.bin', title: 'Field data', description: 'Raw samples', price: 'EUR:0.04', contentType: 'application/octet-stream', content: toBase64Url(file) },
      { headers: { authorization: `Bearer ${SHOP_TOKEN}`, 'idempotency-key': randomId() } },
    );
    await getJson(`${t.shop.moduleUrl}${MerchantPaths.products}`);
    await getJson(`${t.shop.moduleUrl}${MerchantPaths.merchant}`);
    const origin = t.shop.url;
    const first = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'why-micropayments', price: 'EUR:0.03', origin });
    const bought = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'field-data.bin', price: 'EUR:0.04', origin });
    expect(bought.content).toEqual(file);
    const handle = first.receipt.transactionId;
    await shopper.merchantSession(handle);
    await getJson(`${t.shop.moduleUrl}/sessions/${encodeURIComponent((await shopper.transaction(handle))!.handle!)}`, {
      headers: { authorization: `Bearer ${SHOP_TOKEN}` },
    });

    // A dispute's key release: the arbiter asks the merchant's operator for K1 (POST /v1/arbiter/key).
    const arbiter = await Arbiter.fromKeyDir(keyDir, { operators: [t.eur.url], clock: t.clock });
    arbiterServer = await startArbiterServer(arbiter);
    const judged = (await postJson(`${arbiterServer.url}${ArbiterPaths.judge}`, await shopper.exportEvidence(bought.receipt.receiptId))) as { report: { k1ReleasedBy: string } };
    expect(judged.report.k1ReleasedBy).toBe('op-eur');
    await getJson(`${arbiterServer.url}${ArbiterPaths.health}`);
    await expect(postJson(`${arbiterServer.url}${ArbiterPaths.judge}`, { format: 'not evidence' })).rejects.toMatchObject({ name: 'MALFORMED' });

    // The end and the clearing.
    for (const tx of await shopper.listTransactions()) if (tx.state === 'open' && tx.transactionId) await shopper.endTransaction(tx.transactionId);
    await t.shop.agent.settled();
    for (const tx of await shopper.listTransactions()) if (tx.transactionId) await shopper.transactionStatus(tx.transactionId);

    // The merchant's statement, its sales, the dashboard; the operators' administration.
    await requestStatement({ operatorUrl: t.eur.url, merchantId: 'news.example', key: t.shop.key, now: t.clock.now(), post: (u, b) => postJson(u, b) });
    await getJson(`${t.shop.moduleUrl}${MerchantPaths.adminSales}?days=7`, { headers: { authorization: `Bearer ${SHOP_TOKEN}` } });
    await fetch(`${t.shop.moduleUrl}${MerchantPaths.dashboard}`);
    for (const op of [t.sek, t.eur]) {
      for (const path of [OperatorPaths.adminBalances, OperatorPaths.adminAudit, OperatorPaths.adminPositions]) await getJson(`${op.url}${path}`, { headers: admin });
      await postJson(`${op.url}${OperatorPaths.adminSettleDeadlines}`, {}, { headers: { ...admin, 'idempotency-key': randomId() } });
      await getJson(`${op.url}${OperatorPaths.health}`);
      await getJson(`${op.url}${OperatorPaths.info}`);
    }
    await postJson(`${t.sek.url}${OperatorPaths.adminCreditLimit}`, { accountId: `customer:${account.customerId}`, limit: 'SEK:5.00' }, { headers: admin });

    // Refusals belong to the session too: each answers the catalogue's error body.
    await expect(getJson(`${t.sek.url}${OperatorPaths.adminBalances}`, { headers: { authorization: 'Bearer wrong' } })).rejects.toMatchObject({ name: 'UNAUTHORIZED' });
    await expect(postJson(`${t.sek.url}${OperatorPaths.login}`, { not: 'signed' })).rejects.toMatchObject({ name: 'MALFORMED' });
    await expect(getJson(`${t.shop.moduleUrl}/products/no-such-thing`)).rejects.toMatchObject({ name: 'UNKNOWN_PRODUCT' });
    const replayed = await signMessage('merchant.statement', { msgId: randomId(), merchantId: 'news.example', time: t.clock.now() }, t.shop.key.signer);
    await postJson(`${t.eur.url}${OperatorPaths.merchantStatement}`, replayed);
    await expect(postJson(`${t.eur.url}${OperatorPaths.merchantStatement}`, replayed)).rejects.toMatchObject({ name: 'REPLAYED' });

    // ── the documents ────────────────────────────────────────────────────────────────────────
    stopObserving();
    const docs = {
      operator: (await getJson(`${t.eur.url}${OperatorPaths.openapi}`)) as OpenApiDoc,
      sekOperator: (await getJson(`${t.sek.url}${OperatorPaths.openapi}`)) as OpenApiDoc,
      module: (await getJson(`${t.shop.moduleUrl}${MerchantPaths.openapi}`)) as OpenApiDoc,
      arbiter: (await getJson(`${arbiterServer.url}${ArbiterPaths.openapi}`)) as OpenApiDoc,
    };
    // Which server answered: by the host the request was sent to.
    const docOfHost = new Map<string, OpenApiDoc>([
      [new URL(t.sek.url).host, docs.sekOperator],
      [new URL(t.eur.url).host, docs.operator],
      [new URL(t.shop.url).host, docs.module],
      [new URL(arbiterServer.url).host, docs.arbiter],
    ]);
    for (const [name, doc] of Object.entries(docs)) {
      const result = await new Validator().validate(structuredClone(doc) as unknown as Record<string, unknown>);
      expect(result.errors ?? [], `${name}: the document is valid OpenAPI`).toEqual([]);
      expect(result.valid).toBe(true);
      expect(doc.openapi).toBe('3.1.0');
      // Every operation says what it answers (and every POST what it takes).
      for (const [path, methods] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(methods)) {
          // Declared, not Fastify's placeholder: a JSON route names its error body too; a page its media type.
          const declared = op.responses['4XX'] !== undefined || Object.values(op.responses).some((r) => r.content && !r.content['application/json']);
          expect(declared || (method === 'get' && path === '/obol/admin'), `${name} ${method.toUpperCase()} ${path}: its answers are declared`).toBe(true);
          if (method === 'post' && path !== OperatorPaths.adminSettleDeadlines) expect(op.requestBody, `${name} POST ${path}: its body`).toBeDefined();
        }
      }
    }

    // ── the traffic ──────────────────────────────────────────────────────────────────────────
    const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: false });
    const compiled = new Map<object, ValidateFunction>();
    const check = (schema: object, value: unknown): string | undefined => {
      let v = compiled.get(schema);
      if (!v) {
        v = ajv.compile(schema);
        compiled.set(schema, v);
      }
      return v(value) ? undefined : ajv.errorsText(v.errors);
    };
    const problems: string[] = [];
    const refusedOutside: string[] = [];
    const seen = new Set<string>();
    for (const e of exchanges) {
      const path = e.url.split('?')[0]!;
      const host = e.requestHeaders.host;
      const doc = typeof host === 'string' ? docOfHost.get(host) : undefined;
      const what = `${e.method} ${host ?? '?'}${path} → ${e.status}`;
      if (!doc) {
        problems.push(`${what}: not one of the session's servers`);
        continue;
      }
      const found = findOperation(doc, e.method, path);
      if (!found) {
        problems.push(`${what}: no operation in the document`);
        continue;
      }
      const { op, template, params } = found;
      seen.add(`${e.method} ${doc === docs.arbiter ? 'arbiter:' : ''}${template}`);
      for (const p of op.parameters ?? []) {
        const value = p.in === 'path' ? params[p.name] : p.in === 'header' ? e.requestHeaders[p.name] : new URLSearchParams(e.url.split('?')[1] ?? '').get(p.name) ?? undefined;
        if (value === undefined) {
          if (p.required) problems.push(`${what}: required ${p.in} parameter ${p.name} missing`);
          continue;
        }
        const wrong = check(p.schema, value);
        if (wrong) problems.push(`${what}: ${p.in} parameter ${p.name}: ${wrong}`);
      }
      // A request outside the document must be refused (4xx); any other must fit it.
      if (e.method === 'POST' && op.requestBody) {
        const wrong = check(op.requestBody.content['application/json']!.schema, e.requestBody);
        if (wrong) {
          if (e.status >= 400 && e.status < 500) refusedOutside.push(what);
          else problems.push(`${what}: request body: ${wrong}`);
        }
      }
      const response = op.responses[String(e.status)] ?? op.responses[`${String(e.status)[0]}XX`] ?? op.responses.default;
      if (!response) {
        problems.push(`${what}: the document has no answer with this status`);
        continue;
      }
      const mediaType = (e.contentType ?? '').split(';')[0]!.trim();
      if (!response.content) continue;
      const media = response.content[mediaType];
      if (!media) {
        problems.push(`${what}: answered ${mediaType}, the document says ${Object.keys(response.content).join(', ')}`);
        continue;
      }
      if (mediaType === 'application/json') {
        const wrong = check(media.schema, JSON.parse(e.responseText ?? 'null'));
        if (wrong) problems.push(`${what}: response body: ${wrong}`);
      }
    }
    expect(problems).toEqual([]);
    // The requests sent outside the document on purpose (an unsigned logon, no evidence) were refused.
    expect(refusedOutside.sort()).toEqual(
      [`POST ${new URL(t.sek.url).host}${OperatorPaths.login} → 400`, `POST ${new URL(arbiterServer.url).host}${ArbiterPaths.judge} → 400`].sort(),
    );
    // The session touched the protocol's routes (not a vacuous pass).
    for (const route of [
      `POST ${OperatorPaths.initiate}`,
      `POST ${OperatorPaths.peerInitiate}`,
      `POST ${OperatorPaths.customerRecord}`,
      `POST ${OperatorPaths.peerCustomerRecord}`,
      `POST ${OperatorPaths.merchantRecord}`,
      `POST ${OperatorPaths.peerClearings}`,
      `POST ${OperatorPaths.arbiterKey}`,
      `POST ${OperatorPaths.merchantStatement}`,
      `POST ${OperatorPaths.adminMerchants}`,
      `GET /v1/transactions/{transactionId}`,
      `POST /obol${MerchantPaths.info}`,
      `POST /obol${MerchantPaths.order}`,
      `POST /obol${MerchantPaths.accept}`,
      `POST /obol${MerchantPaths.stop}`,
      `GET /obol/sessions/{transactionId}`,
      `POST /obol${MerchantPaths.adminProducts}`,
      `POST arbiter:${ArbiterPaths.judge}`,
    ]) {
      expect(seen, route).toContain(route);
    }
    expect(exchanges.length).toBeGreaterThan(50);
  });
});

/** The operation for a request: the path template (OpenAPI's `{name}`) that matches, and its parameters. */
function findOperation(doc: OpenApiDoc, method: string, path: string): { op: Operation; template: string; params: Record<string, string> } | undefined {
  for (const [template, methods] of Object.entries(doc.paths)) {
    const op = methods[method.toLowerCase()];
    if (!op) continue;
    const names: string[] = [];
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    const match = new RegExp(`^${pattern}$`).exec(path);
    if (!match) continue;
    return { op, template, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1]!)])) };
  }
  return undefined;
}
