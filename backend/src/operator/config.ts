import Type, { type Static } from 'typebox';
import { checkSchema } from '@obol/protocol/messages';
import { DEFAULT_ADMIN_CALLS, DEFAULT_ADMIN_LOCKOUT } from '../http/rateLimit.ts';

/**
 * An operator's configuration (a JSON file, `obol operator start --config FILE`). Keys live in
 * `keyDir`; the database is PGlite in `dataDir` unless `databaseUrl` (or DATABASE_URL) names a
 * PostgreSQL server.
 */
const RateRuleSchema = Type.Object(
  { limit: Type.Integer({ minimum: 1, maximum: 1_000_000 }), windowSec: Type.Integer({ minimum: 1, maximum: 86_400 }) },
  { additionalProperties: false },
);

/**
 * Rate limits per client (remote address), each a burst of `limit` requests refilled over
 * `windowSec`; over it a request is answered 429 RATE_LIMITED with `retry-after`. Anything left
 * out takes its value from DEFAULT_RATE_LIMITS.
 */
export const RateLimitsSchema = Type.Object(
  {
    /** Customer registrations (`POST /v1/customers`). */
    registration: Type.Optional(RateRuleSchema),
    /** Logon challenges and logons together (a logon is two requests). */
    logon: Type.Optional(RateRuleSchema),
    /** Demo top-ups by wallets. */
    topUp: Type.Optional(RateRuleSchema),
    /** Administration calls, right token or not. */
    admin: Type.Optional(RateRuleSchema),
    /** Wrong admin tokens: `failures` within `windowSec` lock the address out of administration for `lockoutSec`. */
    adminLockout: Type.Optional(
      Type.Object(
        {
          failures: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
          windowSec: Type.Integer({ minimum: 1, maximum: 86_400 }),
          lockoutSec: Type.Integer({ minimum: 1, maximum: 86_400 }),
        },
        { additionalProperties: false },
      ),
    ),
    /** Clients each limiter remembers at most (its memory bound); the least recently seen is forgotten first. */
    maxClients: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
export type RateLimits = Static<typeof RateLimitsSchema>;

/**
 * Generous for a person, tight for a script: a household registers a few wallets, a wallet logs
 * on once per browsing session, an operator's staff and shops make a few administration calls a
 * minute; ten wrong admin tokens lock the address out for a quarter of an hour.
 */
export const DEFAULT_RATE_LIMITS: Required<RateLimits> = {
  registration: { limit: 10, windowSec: 600 },
  logon: { limit: 30, windowSec: 60 },
  topUp: { limit: 10, windowSec: 60 },
  admin: DEFAULT_ADMIN_CALLS,
  adminLockout: DEFAULT_ADMIN_LOCKOUT,
  maxClients: 10_000,
};

export function rateLimitsOf(config: OperatorConfig): Required<RateLimits> {
  return { ...DEFAULT_RATE_LIMITS, ...config.rateLimits };
}

export const OperatorConfigSchema = Type.Object({
  operatorId: Type.String({ pattern: '^[a-z][a-z0-9-]{0,30}[a-z0-9]$' }),
  name: Type.String(),
  currency: Type.String({ pattern: '^[A-Z]{3}$' }),
  host: Type.Optional(Type.String()),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  /** How others reach this operator; defaults to http://host:port. */
  publicUrl: Type.Optional(Type.String()),
  keyDir: Type.String(),
  dataDir: Type.Optional(Type.String()),
  databaseUrl: Type.Optional(Type.String()),
  /** Other operators: id → base URL. Their certificates are fetched and checked against the root. */
  peers: Type.Record(Type.String(), Type.String()),
  /** Exchange rates published in this operator's table: major units of C per one major unit of `currency`. */
  rates: Type.Record(Type.String({ pattern: '^[A-Z]{3}$' }), Type.String()),
  tableLifetimeSec: Type.Optional(Type.Integer({ minimum: 10 })),
  /** After a trading session's timer, how long each side has to report before it is settled without it. */
  clearingGraceSec: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Demo mode: wallets may top themselves up. */
  demo: Type.Optional(Type.Boolean()),
  demoTopUpLimit: Type.Optional(Type.String()),
  adminToken: Type.String({ minLength: 16 }),
  /**
   * Arbiters (dispute boards) this operator trusts, name → public key (SPKI, base64url, as
   * `obol arbiter init` prints it): as the trusted party of FIG 4 it releases K1 of its merchants'
   * transactions to them, on a request signed with that key.
   */
  arbiters: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 64 }), Type.String({ pattern: '^[A-Za-z0-9_-]+$', maxLength: 512 }))),
  rateLimits: Type.Optional(RateLimitsSchema),
  /**
   * Serve HTTPS: PEM files of the certificate chain (server certificate, then the operator's) and
   * the private key, as `obol operator issue-tls-cert` writes them. Without it, plain HTTP.
   */
  tls: Type.Optional(Type.Object({ cert: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }) }, { additionalProperties: false })),
  billing: Type.Optional(
    Type.Object({
      jsonlFile: Type.Optional(Type.String()),
      webhook: Type.Optional(Type.Object({ url: Type.String(), secret: Type.String({ minLength: 16 }) })),
    }),
  ),
});
export type OperatorConfig = Static<typeof OperatorConfigSchema>;

export function checkOperatorConfig(value: unknown): OperatorConfig {
  checkSchema(OperatorConfigSchema, value, 'operator configuration');
  return value;
}

export function publicUrlOf(config: OperatorConfig, actualPort?: number): string {
  return config.publicUrl ?? `${config.tls ? 'https' : 'http'}://${config.host ?? '127.0.0.1'}:${actualPort ?? config.port}`;
}
