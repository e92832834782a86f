import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

const run = promisify(execFile);
const obol = fileURLToPath(new URL('../bin/obol.js', import.meta.url));

describe('an operator as its operator sees it (PGlite)', () => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators('PGlite');
  }, 120_000);
  afterAll(async () => t?.close());

  it('answers /healthz and serves its OpenAPI document', async () => {
    expect((await t.sek.app.inject({ method: 'GET', url: OperatorPaths.health })).json()).toEqual({ ok: true, operatorId: 'op-sek' });
    const doc = (await t.sek.app.inject({ method: 'GET', url: OperatorPaths.openapi })).json() as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([OperatorPaths.initiate, OperatorPaths.peerInitiate, OperatorPaths.adminAudit]));
  });

  it('refuses administration without the admin token, and malformed bodies with MALFORMED', async () => {
    const res = await t.sek.app.inject({ method: 'GET', url: OperatorPaths.adminAudit });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 4100, name: 'UNAUTHORIZED' } });
    const bad = await t.sek.app.inject({ method: 'POST', url: OperatorPaths.registerCustomer, payload: '{"publicKey": 12' , headers: { 'content-type': 'application/json' } });
    expect(bad.json()).toMatchObject({ error: { name: 'MALFORMED' } });
    const wrong = await t.sek.app.inject({ method: 'POST', url: OperatorPaths.registerCustomer, payload: { publicKey: 'bm90LWEta2V5' } });
    expect(wrong.json()).toMatchObject({ error: { name: 'MALFORMED' } });
  });

  it('the CLI funds a customer, shows balances, audits and reports positions', async () => {
    const shopper = t.newShopper();
    const { customerId } = await shopper.register(t.sek.url);
    const args = ['--operator', t.sek.url, '--admin-token', t.world.adminToken];
    const funded = await run('node', [obol, 'fund', ...args, '--customer', customerId, '--amount', 'SEK:12.50']);
    expect(JSON.parse(funded.stdout)).toMatchObject({ balance: 'SEK:12.50' });
    const balances = JSON.parse((await run('node', [obol, 'balances', ...args])).stdout) as Array<{ account: string; balance: string }>;
    expect(balances).toContainEqual({ account: `customer:${customerId}`, kind: 'customer', balance: 'SEK:12.50' });
    expect(JSON.parse((await run('node', [obol, 'audit', ...args])).stdout)).toMatchObject({ ok: true });
    expect(Array.isArray(JSON.parse((await run('node', [obol, 'positions', ...args])).stdout))).toBe(true);
    const refused = await run('node', [obol, 'fund', ...args, '--customer', customerId, '--amount', 'EUR:1.00']).catch((e: { stderr: string; code: number }) => e);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain('CURRENCY_MISMATCH');
  }, 60_000);

  it('a wallet learns who a merchant is, vouched for by its own bank, before any deposit', async () => {
    const shopper = t.newShopper();
    const { customerId } = await shopper.register(t.sek.url);
    await shopper.login();
    const merchant = await shopper.verifiedMerchant(t.shop.moduleUrl);
    expect(merchant).toMatchObject({ merchantId: 'news.example', operatorId: 'op-eur', currency: 'EUR' });
    expect(merchant.origins).toContain(t.shop.url);
    const rows = await t.sek.ctx.db.query('SELECT id FROM am_transactions WHERE customer_id = $1', [customerId]);
    expect(rows).toHaveLength(0);
    const unknown = await t.sek.app.inject({ method: 'GET', url: '/v1/merchants/op-eur/nobody.example' });
    expect(unknown.json()).toMatchObject({ error: { name: 'UNKNOWN_MERCHANT' } });
  });
});
