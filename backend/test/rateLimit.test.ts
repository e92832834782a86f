import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { ManualClock } from '@obol/protocol/clock';
import { ErrorCodes } from '@obol/protocol/errors';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { DEFAULT_ADMIN_LOCKOUT, Lockout, RateLimiter, clientKey } from '../src/http/rateLimit.ts';
import { DEFAULT_RATE_LIMITS } from '../src/operator/config.ts';
import type { OperatorServer } from '../src/operator/server.ts';
import { startShop } from '../src/world/shop.ts';
import { type World, startOperators } from '../src/world/world.ts';

const SHOP_ADMIN = 'shop-admin-token-0123456789';

/**
 * Rate limits per client on what a script could flood: registration, logon, demo top-ups and
 * administration (with a lockout after wrong tokens). Time is the injected clock: the tests move
 * it instead of sleeping.
 */
describe('the limiter', () => {
  it('grants a burst, then refuses with the time until the next request is allowed', () => {
    const clock = new ManualClock();
    const l = new RateLimiter({ limit: 3, windowSec: 60 }, clock);
    expect([l.take('a'), l.take('a'), l.take('a')]).toEqual([0, 0, 0]);
    expect(l.take('a')).toBe(20_000);
    expect(l.take('b')).toBe(0); // another client has its own budget
    clock.advance(19_999);
    expect(l.take('a')).toBeGreaterThan(0);
    clock.advance(1);
    expect(l.take('a')).toBe(0);
    expect(l.take('a')).toBe(20_000);
  });

  it('forgets a client once its budget is whole again, and never holds more than maxClients', () => {
    const clock = new ManualClock();
    const l = new RateLimiter({ limit: 2, windowSec: 10 }, clock, 100);
    l.take('x');
    expect(l.tracked).toBe(1);
    clock.advance(5_000);
    l.take('y');
    clock.advance(5_000);
    l.take('x'); // x's bucket was full again: taking one leaves it tracked, nothing more
    for (let i = 0; i < 50_000; i++) l.take(`10.0.${i >> 8}.${i & 255}`);
    expect(l.tracked).toBe(100);
  });

  it('locks a client out after enough failures in the window, for the lockout', () => {
    const clock = new ManualClock();
    const lock = new Lockout({ failures: 3, windowSec: 60, lockoutSec: 600 }, clock, 10);
    lock.fail('a');
    lock.fail('a');
    clock.advance(61_000); // the window passed: counting starts again
    lock.fail('a');
    lock.fail('a');
    expect(lock.lockedFor('a')).toBe(0);
    lock.fail('a');
    expect(lock.lockedFor('a')).toBe(600_000);
    clock.advance(600_000);
    expect(lock.lockedFor('a')).toBe(0);
    expect(lock.tracked).toBe(0);
    for (let i = 0; i < 1_000; i++) lock.fail(`c${i}`);
    expect(lock.tracked).toBe(10);
  });

  it('counts a client by its address; IPv6 by its /64', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
  });
});

describe('an operator limits each client (default limits)', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 23, 12));
  let world: World;
  let op: OperatorServer;
  beforeAll(async () => {
    world = await startOperators([{ operatorId: 'op-sek', name: 'Svea Bank', currency: 'SEK', rates: { EUR: '0.0874' } }], { clock });
    op = world.operators['op-sek']!;
  }, 60_000);
  afterAll(async () => world?.close());

  const from = (remoteAddress: string) => ({
    register: async () =>
      op.app.inject({ method: 'POST', url: OperatorPaths.registerCustomer, remoteAddress, payload: { publicKey: (await keyHandle(await generateSigningKeyPair())).publicKeySpki } }),
    challenge: () => op.app.inject({ method: 'POST', url: OperatorPaths.challenge, remoteAddress, payload: { customerId: 'nobody' } }),
    login: () => op.app.inject({ method: 'POST', url: OperatorPaths.login, remoteAddress, payload: {} }),
    topUp: () => op.app.inject({ method: 'POST', url: OperatorPaths.demoTopUp, remoteAddress, payload: { amount: 'SEK:1.00' } }),
    admin: (token: string) => op.app.inject({ method: 'GET', url: OperatorPaths.adminAudit, remoteAddress, headers: { authorization: `Bearer ${token}` } }),
  });

  function expectLimited(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, retryAfterSec: number): void {
    expect(res.statusCode).toBe(429);
    expect(res.json()).toMatchObject({ error: { code: ErrorCodes.RATE_LIMITED, name: 'RATE_LIMITED' } });
    expect(res.headers['retry-after']).toBe(String(retryAfterSec));
  }

  it(`registration: ${DEFAULT_RATE_LIMITS.registration.limit} in a burst, then 429 until time refills the budget`, async () => {
    const client = from('198.51.100.1');
    const { limit, windowSec } = DEFAULT_RATE_LIMITS.registration;
    for (let i = 0; i < limit; i++) expect((await client.register()).statusCode).toBe(200);
    expectLimited(await client.register(), windowSec / limit);
    expect((await from('198.51.100.2').register()).statusCode).toBe(200); // another client is not affected
    clock.advance((windowSec / limit) * 1000);
    expect((await client.register()).statusCode).toBe(200);
    expectLimited(await client.register(), windowSec / limit);
    const count = await op.ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM customers');
    expect(count[0]!.n).toBe(limit + 2);
  }, 60_000);

  it('logon: challenges and logons share one budget, checked before anything else', async () => {
    const client = from('198.51.100.3');
    const { limit } = DEFAULT_RATE_LIMITS.logon;
    for (let i = 0; i < limit / 2; i++) {
      expect((await client.challenge()).statusCode).not.toBe(429);
      expect((await client.login()).statusCode).not.toBe(429);
    }
    expectLimited(await client.challenge(), 2);
    expectLimited(await client.login(), 2);
    expect((await from('198.51.100.4').challenge()).statusCode).not.toBe(429);
  });

  it('demo top-ups', async () => {
    const client = from('198.51.100.5');
    for (let i = 0; i < DEFAULT_RATE_LIMITS.topUp.limit; i++) expect((await client.topUp()).statusCode).toBe(401);
    expectLimited(await client.topUp(), 6);
  });

  it('administration: wrong tokens lock the address out, even for the right token, for the lockout', async () => {
    const attacker = from('198.51.100.6');
    const { failures, lockoutSec } = DEFAULT_RATE_LIMITS.adminLockout;
    for (let i = 0; i < failures; i++) expect((await attacker.admin(`wrong-token-${i}-xxxxxxxx`)).statusCode).toBe(401);
    expectLimited(await attacker.admin(world.adminToken), lockoutSec);
    expect((await from('198.51.100.7').admin(world.adminToken)).statusCode).toBe(200);
    clock.advance(lockoutSec * 1000);
    expect((await attacker.admin(world.adminToken)).statusCode).toBe(200);
  });

  it('administration: a burst of 1,000 wrong tokens is served 10 answers, the rest are 429', async () => {
    const attacker = from('198.51.100.8');
    const answers = await Promise.all(Array.from({ length: 1_000 }, (_, i) => attacker.admin(`wrong-token-${i}-xxxxxxxx`)));
    const statuses = answers.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(DEFAULT_RATE_LIMITS.adminLockout.failures);
    expect(statuses.filter((s) => s === 429)).toHaveLength(1_000 - DEFAULT_RATE_LIMITS.adminLockout.failures);
  });

  it('administration: right-token calls are limited too', async () => {
    const busy = from('198.51.100.9');
    const { limit, windowSec } = DEFAULT_RATE_LIMITS.admin;
    for (let i = 0; i < limit; i++) expect((await busy.admin(world.adminToken)).statusCode).toBe(200);
    expectLimited(await busy.admin(world.adminToken), Math.ceil(windowSec / limit));
  }, 60_000);

  it('the shop’s administration (merchant module): wrong tokens lock the address out of it too', async () => {
    const shop = await startShop({
      merchantId: 'limits.example',
      name: 'Limits',
      operatorUrl: op.url,
      operatorId: 'op-sek',
      currency: 'SEK',
      adminToken: world.adminToken,
      shopAdminToken: SHOP_ADMIN,
      clock,
      sweepIntervalMs: 0,
    });
    try {
      const add = (token: string, remoteAddress = '198.51.100.10') =>
        shop.app.inject({ method: 'POST', url: '/obol/admin/products', remoteAddress, headers: { authorization: `Bearer ${token}` }, payload: {} });
      const { failures, lockoutSec } = DEFAULT_ADMIN_LOCKOUT;
      for (let i = 0; i < failures; i++) expect((await add(`wrong-shop-token-${i}`)).statusCode).toBe(401);
      expectLimited(await add(SHOP_ADMIN), lockoutSec);
      const read = await shop.app.inject({ method: 'GET', url: '/obol/sessions/x', remoteAddress: '198.51.100.10', headers: { authorization: `Bearer ${SHOP_ADMIN}` } });
      expectLimited(read, lockoutSec);
      expect((await add(SHOP_ADMIN, '198.51.100.11')).statusCode).toBe(400); // another address: past the guard, to the body check
      clock.advance(lockoutSec * 1000);
      expect((await add(SHOP_ADMIN)).statusCode).toBe(400);
    } finally {
      await shop.close();
    }
  }, 60_000);

  it('configurable per operator', async () => {
    const tight = await startOperators([{ operatorId: 'op-eur', name: 'Banque Euro', currency: 'EUR', rates: { SEK: '11.44' } }], {
      clock,
      rateLimits: { registration: { limit: 1, windowSec: 3600 } },
    });
    try {
      const app = tight.operators['op-eur']!.app;
      const register = async () =>
        app.inject({ method: 'POST', url: OperatorPaths.registerCustomer, payload: { publicKey: (await keyHandle(await generateSigningKeyPair())).publicKeySpki } });
      expect((await register()).statusCode).toBe(200);
      expectLimited(await register(), 3600);
    } finally {
      await tight.close();
    }
  }, 60_000);
});
