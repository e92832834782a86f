import { type Clock, systemClock } from '@obol/protocol/clock';
import type { BillingSink } from '../billing/index.ts';
import type { OperatorConfig } from '../operator/config.ts';
import { type RootAuthority, createOperatorIdentity, createRoot } from '../operator/identity.ts';
import { type OperatorServer, startOperator } from '../operator/server.ts';
import type { Db } from '../store/db.ts';

/**
 * A world of operators that trust one interbank root: what the tests and the demo start. Each
 * operator is a real server on its own database, talking signed HTTP to the others.
 */
export interface OperatorSpec {
  operatorId: string;
  name: string;
  currency: string;
  rates: Record<string, string>;
  db?: Db;
  dataDir?: string;
  port?: number;
  sinks?: BillingSink[];
  demo?: boolean;
}

export interface World {
  root: RootAuthority;
  operators: Record<string, OperatorServer>;
  adminToken: string;
  close(): Promise<void>;
}

export async function startOperators(
  specs: OperatorSpec[],
  opts: {
    clock?: Clock;
    timers?: boolean;
    clearingGraceSec?: number;
    adminToken?: string;
    root?: RootAuthority;
    /** Arbiters every operator trusts (name → SPKI base64url): they may obtain K1 in a dispute. */
    arbiters?: Record<string, string>;
  } = {},
): Promise<World> {
  const clock = opts.clock ?? systemClock;
  const root = opts.root ?? (await createRoot('Obol Interbank Root', clock.now()));
  const adminToken = opts.adminToken ?? 'admin-token-for-this-world';
  const operators: Record<string, OperatorServer> = {};
  for (const spec of specs) {
    const { identity } = await createOperatorIdentity(root, spec.operatorId, clock.now());
    const config: OperatorConfig = {
      operatorId: spec.operatorId,
      name: spec.name,
      currency: spec.currency,
      port: spec.port ?? 0,
      keyDir: '',
      ...(spec.dataDir ? { dataDir: spec.dataDir } : {}),
      peers: {},
      rates: spec.rates,
      clearingGraceSec: opts.clearingGraceSec ?? 300,
      demo: spec.demo ?? true,
      adminToken,
      ...(opts.arbiters ? { arbiters: opts.arbiters } : {}),
    };
    operators[spec.operatorId] = await startOperator({
      config,
      identity,
      clock,
      timers: opts.timers ?? false,
      ...(spec.db ? { db: spec.db } : {}),
      ...(spec.sinks ? { sinks: spec.sinks } : {}),
    });
  }
  // Every operator knows every other one.
  for (const a of Object.values(operators)) {
    for (const b of Object.values(operators)) a.ctx.peers.addPeerUrl(b.ctx.config.operatorId, b.url);
  }
  return {
    root,
    operators,
    adminToken,
    close: async () => {
      for (const op of Object.values(operators)) await op.close();
    },
  };
}
