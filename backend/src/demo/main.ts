import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { systemClock } from '@obol/protocol/clock';
import { JsonlFileSink } from '../billing/index.ts';
import type { OperatorConfig } from '../operator/config.ts';
import {
  type RootAuthority,
  createOperatorIdentity,
  createRoot,
  loadOperatorIdentity,
  loadRoot,
  saveKeyPair,
  saveOperatorIdentity,
} from '../operator/identity.ts';
import { type OperatorServer, startOperator } from '../operator/server.ts';
import { openDb } from '../store/db.ts';
import { type Shop, startShop } from '../world/shop.ts';
import { newsCatalogue } from './catalogues.ts';
import { shopPages } from './shopPages.ts';

/**
 * The demo world: two operators in two currencies and the shops, on fixed local ports, with their
 * keys and embedded databases under one data folder, so the next start keeps everything. Nothing
 * in it is faked: these are the real servers with demo data.
 */
export const DEMO_PORTS = { opSek: 7101, opEur: 7102, news: 7201 } as const;
const ADMIN_TOKEN = process.env.OBOL_ADMIN_TOKEN ?? 'demo-admin-token-change-me';

async function rootAt(dir: string): Promise<RootAuthority> {
  if (existsSync(join(dir, 'root.key.json'))) return loadRoot(dir);
  const root = await createRoot('Obol Demo Interbank Root', Date.now());
  await saveKeyPair(dir, 'root', root.keys, root.cert);
  return root;
}

async function operatorAt(dataDir: string, root: RootAuthority, spec: Omit<OperatorConfig, 'keyDir' | 'adminToken' | 'peers'> & { peers: Record<string, string> }): Promise<OperatorServer> {
  const keyDir = join(dataDir, 'keys', spec.operatorId);
  if (!existsSync(join(keyDir, 'operator.key.json'))) {
    const { identity, keys } = await createOperatorIdentity(root, spec.operatorId, Date.now());
    await saveOperatorIdentity(keyDir, keys, identity);
  }
  const identity = await loadOperatorIdentity(keyDir);
  const config: OperatorConfig = { ...spec, keyDir, adminToken: ADMIN_TOKEN, dataDir: join(dataDir, spec.operatorId) };
  return startOperator({
    config,
    identity,
    sinks: [new JsonlFileSink(join(dataDir, `${spec.operatorId}-billing.jsonl`))],
  });
}

export interface DemoWorld {
  operators: OperatorServer[];
  shops: Shop[];
  close(): Promise<void>;
}

export async function startDemo(dataDir: string): Promise<DemoWorld> {
  await mkdir(dataDir, { recursive: true });
  const root = await rootAt(join(dataDir, 'keys', 'root'));
  const sekUrl = `http://127.0.0.1:${DEMO_PORTS.opSek}`;
  const eurUrl = `http://127.0.0.1:${DEMO_PORTS.opEur}`;
  const sek = await operatorAt(dataDir, root, {
    operatorId: 'op-sek',
    name: 'Svea Bank',
    currency: 'SEK',
    port: DEMO_PORTS.opSek,
    peers: { 'op-eur': eurUrl },
    rates: { EUR: '0.0874', USD: '0.0951', GBP: '0.0745' },
    demo: true,
  });
  const eur = await operatorAt(dataDir, root, {
    operatorId: 'op-eur',
    name: 'Banque Euro',
    currency: 'EUR',
    port: DEMO_PORTS.opEur,
    peers: { 'op-sek': sekUrl },
    rates: { SEK: '11.44', USD: '1.088', GBP: '0.853' },
    demo: true,
  });
  const news = await startShop({
    merchantId: 'news.example',
    name: 'The Daily Obol',
    operatorUrl: eur.url,
    operatorId: 'op-eur',
    currency: 'EUR',
    adminToken: ADMIN_TOKEN,
    catalogue: newsCatalogue('EUR'),
    clock: systemClock,
    port: DEMO_PORTS.news,
    origins: [`http://localhost:${DEMO_PORTS.news}`],
    db: await openDb({ dataDir: join(dataDir, 'shop-news') }),
    pages: (app, agent) =>
      shopPages(app, {
        title: 'The Daily Obol',
        tagline: 'Articles for three cents each, paid with one click.',
        products: () => agent.products(),
        kind: 'article',
      }),
  });
  return {
    operators: [sek, eur],
    shops: [news],
    close: async () => {
      for (const s of [news]) await s.close();
      for (const o of [sek, eur]) await o.close();
    },
  };
}

/** `npm start`: start the demo world and print where everything is. */
export async function runDemo(_args: string[]): Promise<void> {
  const dataDir = resolve(process.env.OBOL_DATA_DIR ?? '.data/demo');
  const world = await startDemo(dataDir);
  const [sek, eur] = world.operators as [OperatorServer, OperatorServer];
  const [news] = world.shops as [Shop];
  console.log(`
Obol demo world is running (data in ${dataDir}; Ctrl-C stops it, the next start keeps it).

  Operators (account manager + acquirer):
    Svea Bank   (op-sek, SEK)  ${sek.url}      OpenAPI: ${sek.url}/openapi.json
    Banque Euro (op-eur, EUR)  ${eur.url}      OpenAPI: ${eur.url}/openapi.json

  Shops:
    The Daily Obol (news.example, EUR at op-eur)   ${news.url}   merchant module: ${news.moduleUrl}

  Operator administration (admin token: ${ADMIN_TOKEN}):
    node backend/bin/obol.js balances  --operator ${sek.url} --admin-token ${ADMIN_TOKEN}
    node backend/bin/obol.js audit     --operator ${eur.url} --admin-token ${ADMIN_TOKEN}
    node backend/bin/obol.js positions --operator ${sek.url} --admin-token ${ADMIN_TOKEN}
`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the demo world…');
    await world.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

