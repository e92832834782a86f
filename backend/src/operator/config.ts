import Type, { type Static } from 'typebox';
import { checkSchema } from '@obol/protocol/messages';

/**
 * An operator's configuration (a JSON file, `obol operator start --config FILE`). Keys live in
 * `keyDir`; the database is PGlite in `dataDir` unless `databaseUrl` (or DATABASE_URL) names a
 * PostgreSQL server.
 */
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
  return config.publicUrl ?? `http://${config.host ?? '127.0.0.1'}:${actualPort ?? config.port}`;
}
