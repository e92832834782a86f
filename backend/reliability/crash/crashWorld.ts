/**
 * The crash trial's world on disk: an interbank root, two operators (SEK and EUR) and one shop
 * at each, every one a separate process with its keys in a folder and its data in a PGlite data
 * folder or a PostgreSQL database, on fixed ports so every URL survives a restart. Operators run
 * through the real command line (`obol operator start --config`), shops through shopProcess.ts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MerchantPaths, OperatorPaths } from '@obol/protocol/api';
import { certToBase64 } from '@obol/protocol/pki';
import type { OperatorConfig } from '../../src/operator/config.ts';
import { createOperatorIdentity, createRoot, saveOperatorIdentity } from '../../src/operator/identity.ts';
import type { TestPostgres } from '../../test/support/testPostgres.ts';
import { freePort } from '../../src/world/shop.ts';
import { ServerProcess } from './serverProcess.ts';
import type { ShopProcessConfig } from './shopProcess.ts';

export type CrashDb = 'pglite' | 'postgres';

export interface CrashOperator {
  operatorId: string;
  currency: string;
  url: string;
  /** Where each of its databases lives: the PGlite folder, or the PostgreSQL URL. */
  dataDir?: string;
  databaseUrl?: string;
  billingFile: string;
  process: ServerProcess;
}

export interface CrashShop {
  merchantId: string;
  currency: string;
  operatorId: string;
  url: string;
  moduleUrl: string;
  dataDir?: string;
  databaseUrl?: string;
  process: ServerProcess;
}

export interface CrashWorld {
  dir: string;
  adminToken: string;
  trustedRoot: string;
  operators: CrashOperator[];
  shops: CrashShop[];
  all(): ServerProcess[];
}

const BACKEND = fileURLToPath(new URL('../../', import.meta.url));
const OBOL = join(BACKEND, 'bin', 'obol.js');
const SHOP_ENTRY = fileURLToPath(new URL('./shopProcess.ts', import.meta.url));

/** Out of the way of hundreds of shoppers on 127.0.0.1 (the limits are tested at their defaults elsewhere). */
const FAR = { limit: 1_000_000, windowSec: 1 };
const NO_LIMITS: OperatorConfig['rateLimits'] = {
  registration: FAR,
  logon: FAR,
  topUp: FAR,
  admin: FAR,
  adminLockout: { failures: 1_000_000, windowSec: 1, lockoutSec: 1 },
};

const OPERATORS = [
  { operatorId: 'op-sek', name: 'Svea Bank', currency: 'SEK', rates: { EUR: '0.0874' } },
  { operatorId: 'op-eur', name: 'Banque Euro', currency: 'EUR', rates: { SEK: '11.44' } },
] as const;

export async function buildCrashWorld(o: {
  dir: string;
  db: CrashDb;
  postgres?: TestPostgres;
  clearingGraceSec: number;
  shopSweepMs: number;
}): Promise<CrashWorld> {
  const adminToken = 'crash-trial-admin-token';
  const logDir = join(o.dir, 'logs');
  await mkdir(logDir, { recursive: true });
  const root = await createRoot('Obol Crash Trial Root', Date.now());
  const database = async (name: string): Promise<{ dataDir?: string; databaseUrl?: string }> => {
    if (o.db === 'pglite') return { dataDir: join(o.dir, name, 'data') };
    if (!o.postgres) throw new Error('the PostgreSQL trial needs a server');
    return { databaseUrl: await o.postgres.createDatabase() };
  };

  const ports = new Map<string, number>();
  for (const op of OPERATORS) ports.set(op.operatorId, await freePort());
  const operators: CrashOperator[] = [];
  for (const spec of OPERATORS) {
    const home = join(o.dir, spec.operatorId);
    const keyDir = join(home, 'keys');
    const { identity, keys } = await createOperatorIdentity(root, spec.operatorId, Date.now());
    await saveOperatorIdentity(keyDir, keys, identity);
    const url = `http://127.0.0.1:${ports.get(spec.operatorId)}`;
    const db = await database(spec.operatorId);
    const billingFile = join(home, 'billing.jsonl');
    const config: OperatorConfig = {
      operatorId: spec.operatorId,
      name: spec.name,
      currency: spec.currency,
      port: ports.get(spec.operatorId)!,
      keyDir,
      ...db,
      peers: Object.fromEntries(OPERATORS.filter((p) => p.operatorId !== spec.operatorId).map((p) => [p.operatorId, `http://127.0.0.1:${ports.get(p.operatorId)}`])),
      rates: { ...spec.rates },
      clearingGraceSec: o.clearingGraceSec,
      demo: true,
      adminToken,
      rateLimits: NO_LIMITS,
      billing: { jsonlFile: billingFile },
    };
    const configFile = join(home, 'operator.json');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    operators.push({
      operatorId: spec.operatorId,
      currency: spec.currency,
      url,
      ...db,
      billingFile,
      process: new ServerProcess({
        name: spec.operatorId,
        command: process.execPath,
        args: [OBOL, 'operator', 'start', '--config', configFile],
        healthUrl: `${url}${OperatorPaths.health}`,
        logDir,
      }),
    });
  }

  const shops: CrashShop[] = [];
  for (const op of operators) {
    const merchantId = `shop-${op.currency.toLowerCase()}.example`;
    const home = join(o.dir, merchantId);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const db = await database(merchantId);
    const config: ShopProcessConfig = {
      merchantId,
      name: `Crash shop ${op.currency}`,
      operatorUrl: op.url,
      operatorId: op.operatorId,
      currency: op.currency,
      adminToken,
      port,
      keyDir: join(home, 'keys'),
      ...db,
      sweepIntervalMs: o.shopSweepMs,
    };
    await mkdir(home, { recursive: true });
    const configFile = join(home, 'shop.json');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    shops.push({
      merchantId,
      currency: op.currency,
      operatorId: op.operatorId,
      url,
      moduleUrl: `${url}/obol`,
      ...db,
      process: new ServerProcess({
        name: merchantId,
        // TypeScript loaded inside the one node process (`--import tsx`), not through the tsx
        // command, which runs node as a child: SIGKILL to the command would leave that child serving.
        command: process.execPath,
        args: ['--import', 'tsx', SHOP_ENTRY, configFile],
        cwd: BACKEND,
        healthUrl: `${url}/obol${MerchantPaths.merchant}`,
        logDir,
      }),
    });
  }
  return {
    dir: o.dir,
    adminToken,
    trustedRoot: certToBase64(root.cert),
    operators,
    shops,
    all: () => [...operators.map((op) => op.process), ...shops.map((s) => s.process)],
  };
}
