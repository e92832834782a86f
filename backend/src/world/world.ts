import { type Clock, systemClock } from '@obol/protocol/clock';
import type { BillingSink } from '../billing/index.ts';
import type { OperatorConfig, RateLimits } from '../operator/config.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type OperatorIdentity,
  type RootAuthority,
  createOperatorIdentity,
  createRoot,
  loadOperatorIdentity,
  loadRoot,
  saveKeyPair,
  saveOperatorIdentity,
} from '../operator/identity.ts';
import { type OperatorServer, startOperator } from '../operator/server.ts';
import type { Db } from '../store/db.ts';
import { SealKeys, loadOrCreateSealKeys } from '../store/sealedColumn.ts';

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
  /** Keep the operator's key and certificate in this folder (created on first start). */
  keyDir?: string;
  /** How long its exchange tables are valid (default 3600 s). */
  tableLifetimeSec?: number;
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
    /** Each operator's log lines, instead of stdout (tests read them). */
    logStream?: (operatorId: string) => { write(line: string): void };
    /** Rate limits per client (default DEFAULT_RATE_LIMITS). */
    rateLimits?: RateLimits;
  } = {},
): Promise<World> {
  const clock = opts.clock ?? systemClock;
  const root = opts.root ?? (await createRoot('Obol Interbank Root', clock.now()));
  const adminToken = opts.adminToken ?? 'admin-token-for-this-world';
  const operators: Record<string, OperatorServer> = {};
  for (const spec of specs) {
    const identity = spec.keyDir
      ? await persistentIdentity(root, spec.operatorId, spec.keyDir, clock.now())
      : (await createOperatorIdentity(root, spec.operatorId, clock.now())).identity;
    const config: OperatorConfig = {
      operatorId: spec.operatorId,
      name: spec.name,
      currency: spec.currency,
      port: spec.port ?? 0,
      keyDir: '',
      ...(spec.dataDir ? { dataDir: spec.dataDir } : {}),
      peers: {},
      rates: spec.rates,
      ...(spec.tableLifetimeSec !== undefined ? { tableLifetimeSec: spec.tableLifetimeSec } : {}),
      clearingGraceSec: opts.clearingGraceSec ?? 300,
      demo: spec.demo ?? true,
      adminToken,
      ...(opts.arbiters ? { arbiters: opts.arbiters } : {}),
      ...(opts.rateLimits ? { rateLimits: opts.rateLimits } : {}),
    };
    operators[spec.operatorId] = await startOperator({
      config,
      identity,
      // The data key lives beside the operator's other keys; a world in memory keeps it in memory.
      sealKeys: spec.keyDir ? await loadOrCreateSealKeys(spec.keyDir) : await SealKeys.ephemeral(),
      clock,
      timers: opts.timers ?? false,
      ...(spec.db ? { db: spec.db } : {}),
      ...(opts.logStream ? { logStream: opts.logStream(spec.operatorId) } : {}),
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

/** The interbank root kept in a folder: loaded when it is there, made and saved when it is not. */
export async function persistentRoot(dir: string, now: number): Promise<RootAuthority> {
  if (existsSync(join(dir, 'root.key.json'))) return loadRoot(dir);
  const root = await createRoot('Obol Demo Interbank Root', now);
  await saveKeyPair(dir, 'root', root.keys, root.cert);
  return root;
}

async function persistentIdentity(root: RootAuthority, operatorId: string, keyDir: string, now: number): Promise<OperatorIdentity> {
  if (!existsSync(join(keyDir, 'operator.key.json'))) {
    const { identity, keys } = await createOperatorIdentity(root, operatorId, now);
    await saveOperatorIdentity(keyDir, keys, identity);
  }
  return loadOperatorIdentity(keyDir);
}
