/**
 * A shop as its own process, for the crash trial: `tsx shopProcess.ts <config.json>`. It opens its
 * database (a PGlite data folder or a PostgreSQL URL) and its key folder, registers with its
 * operator and serves on a fixed port, with its session timer on the real clock. The trial kills
 * it with SIGKILL at random moments and starts it again on the same folder; SIGTERM stops it cleanly.
 */
import { readFile } from 'node:fs/promises';
import { systemClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { memoryCatalogue } from '../../src/merchant/catalogue.ts';
import { openDb } from '../../src/store/db.ts';
import { type Shop, startShop } from '../../src/world/shop.ts';
import { crashCatalogue } from './catalogue.ts';

export interface ShopProcessConfig {
  merchantId: string;
  name: string;
  operatorUrl: string;
  operatorId: string;
  currency: string;
  adminToken: string;
  port: number;
  keyDir: string;
  dataDir?: string;
  databaseUrl?: string;
  sweepIntervalMs: number;
}

/** How long a starting shop waits for its operator (which may be down itself, killed by the trial). */
const OPERATOR_WAIT_MS = 60_000;

async function main(): Promise<void> {
  const path = process.argv[2];
  if (!path) throw new ObolError('MALFORMED', 'usage: shopProcess.ts <config.json>');
  const config = JSON.parse(await readFile(path, 'utf8')) as ShopProcessConfig;
  const db = await openDb(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { dataDir: config.dataDir });
  const deadline = Date.now() + OPERATOR_WAIT_MS;
  let shop: Shop | undefined;
  while (!shop) {
    try {
      shop = await startShop({
        merchantId: config.merchantId,
        name: config.name,
        operatorUrl: config.operatorUrl,
        operatorId: config.operatorId,
        currency: config.currency,
        adminToken: config.adminToken,
        catalogue: memoryCatalogue(crashCatalogue(config.currency)),
        clock: systemClock,
        port: config.port,
        keyDir: config.keyDir,
        db,
        sweepIntervalMs: config.sweepIntervalMs,
        logger: process.env.OBOL_LOG === '1',
      });
    } catch (e) {
      // Only "the operator is not there (yet)" is waited out; anything else is the shop's failure.
      const waiting = e instanceof ObolError && (e.name === 'UNAVAILABLE' || e.name === 'TIMEOUT');
      if (!waiting || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const running = shop;
  console.log(`shop ${config.merchantId} listening on ${running.url}`);
  process.once('SIGTERM', () => {
    void running
      .close()
      .then(() => db.close())
      .then(() => process.exit(0));
  });
}

main().catch((e: unknown) => {
  console.error(`shop process failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  process.exit(1);
});
