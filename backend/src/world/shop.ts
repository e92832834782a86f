import { serverCrypto } from '../crypto/nodeCrypto.ts';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { OperatorPaths, RegisterMerchantResponse } from '@obol/protocol/api';
import type { Clock } from '@obol/protocol/clock';
import { type KeyHandle, generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { checkSchema } from '@obol/protocol/messages';
import Fastify, { type FastifyInstance } from 'fastify';
import { postJson, trustServerCas } from '../http/client.ts';
import { type ServerLimits, obolServerOptions } from '../http/serverOptions.ts';
import { type TlsFiles, loadTls } from '../http/tls.ts';
import { type Catalogue, MerchantAgent, type MerchantModuleOptions, merchantModule, undiciPost } from '../merchant/merchantModule.ts';
import { ObolError } from '@obol/protocol/errors';
import { type Db, openDb } from '../store/db.ts';
import { loadOrCreateMerchantKey } from '../merchant/setup.ts';
import { SealKeys, loadOrCreateSealKeys } from '../store/sealedColumn.ts';

export interface ShopOptions {
  merchantId: string;
  name: string;
  operatorUrl: string;
  operatorId: string;
  currency: string;
  /** The operator's admin token (the shop registers with it). */
  adminToken: string;
  /** The shop's own administration token (`POST /obol/admin/products`); none: that route refuses. */
  shopAdminToken?: string;
  catalogue?: Catalogue;
  clock: Clock;
  port?: number;
  /** Extra origins the shop's pages are served from (besides its own URL). */
  origins?: string[];
  db?: Db;
  dataDir?: string;
  /**
   * The shop's key folder: its data key (`data.key.json`, sealing K1 and K2 in the shop's
   * database) and its signing key (`merchant.key.json`) are kept there, made when missing. Or `sealKeys` directly. Neither: a key in memory,
   * allowed only with an in-memory database (a database on disk would outlive its key).
   */
  keyDir?: string;
  sealKeys?: SealKeys;
  /** Session timer period; 0 = off (tests call agent.sweep()). */
  sweepIntervalMs?: number;
  /** Add the shop's own pages before it starts listening. */
  pages?: (app: FastifyInstance, agent: MerchantAgent) => Promise<void> | void;
  logger?: boolean;
  /**
   * Where the log lines go, one JSON line per call (pino), instead of stdout: a test reads what
   * the shop and its merchant module wrote (e.g. that no key or token is ever logged). Implies logging on.
   */
  logStream?: { write(line: string): void };
  /** Time limits on slow clients (default: DEFAULT_LIMITS). */
  limits?: ServerLimits;
  /** Serve HTTPS with this certificate chain and key (PEM files); default plain HTTP. */
  tls?: TlsFiles;
  /** The operator serves HTTPS under its own PKI: its chain (PEM, operator certificate + root) to trust. */
  operatorCa?: string;
  /** Limits on the shop's administration (default: the module's, on this shop's clock). */
  adminLimits?: MerchantModuleOptions['adminLimits'];
}

export interface Shop {
  app: FastifyInstance;
  /** The merchant's signing key (the shop keeps it; tests use it to play a dishonest merchant). */
  key: KeyHandle;
  /** The shop's data key(s), sealing K1 and K2 in its database (tests play a dishonest merchant with them). */
  sealKeys: SealKeys;
  agent: MerchantAgent;
  url: string;
  moduleUrl: string;
  close(): Promise<void>;
}

/**
 * A shop: a Fastify server of its own with the merchant module mounted at /obol, registered with
 * its operator (key made here, certificate issued by the operator's admin API).
 */
export async function startShop(o: ShopOptions): Promise<Shop> {
  const port = o.port || (await freePort());
  const tls = o.tls ? await loadTls(o.tls) : undefined;
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const moduleUrl = `${url}/obol`;
  const origins = [url, ...(o.origins ?? [])];

  if (o.operatorCa) trustServerCas([o.operatorCa]);
  const toOperator = o.operatorCa ? undiciPost({ ca: [o.operatorCa] }) : undefined;
  // A shop restarted on its key folder signs with the key its open sessions were opened under:
  // wallets check every delivery against the merchant certificate they got at initiation.
  const key = o.keyDir ? await loadOrCreateMerchantKey(o.keyDir) : await keyHandle(await generateSigningKeyPair(false, serverCrypto), serverCrypto);
  const reg = await postJson(
    `${o.operatorUrl}${OperatorPaths.adminMerchants}`,
    { merchantId: o.merchantId, publicKey: key.publicKeySpki, origins, url: moduleUrl, name: o.name },
    { headers: { authorization: `Bearer ${o.adminToken}` } },
  );
  checkSchema(RegisterMerchantResponse, reg, 'merchant registration');

  if (!o.sealKeys && !o.keyDir && o.dataDir) {
    throw new ObolError('MALFORMED', `shop ${o.merchantId}: a database in ${o.dataDir} needs a data key kept with it: set keyDir (or sealKeys)`);
  }
  const sealKeys = o.sealKeys ?? (o.keyDir ? await loadOrCreateSealKeys(o.keyDir) : await SealKeys.ephemeral());
  const db = o.db ?? (await openDb({ dataDir: o.dataDir }));
  const logger = o.logStream ? { level: 'trace', stream: o.logStream } : (o.logger ?? false);
  const app = Fastify(obolServerOptions({ logger, ...(o.limits ? { limits: o.limits } : {}), ...(tls ? { tls } : {}) }));
  const agent = await MerchantAgent.open({
    merchantId: o.merchantId,
    name: o.name,
    key,
    merchantCert: reg.merchantCert,
    operatorCert: reg.operatorCert,
    operatorSigningCert: reg.signingCert,
    operatorId: o.operatorId,
    operatorUrl: o.operatorUrl,
    currency: o.currency,
    origins,
    ...(o.catalogue ? { catalogue: o.catalogue } : {}),
    db,
    sealKeys,
    clock: o.clock,
    ...(toOperator ? { http: toOperator.post } : {}),
    // The module's own lines (sessions opened and closed, records delivered, failed reports) go
    // where the shop's server logs, not nowhere.
    log: app.log,
  });
  await app.register(merchantModule, {
    prefix: '/obol',
    agent,
    sweepIntervalMs: o.sweepIntervalMs ?? 15_000,
    ...(o.shopAdminToken ? { adminToken: o.shopAdminToken } : {}),
    adminLimits: { clock: o.clock, ...o.adminLimits },
  });
  await o.pages?.(app, agent);
  await app.listen({ port, host: '127.0.0.1' });
  return {
    app,
    key,
    sealKeys,
    agent,
    url,
    moduleUrl,
    close: async () => {
      await app.close();
      await agent.close();
      await toOperator?.close();
      if (!o.db) await db.close();
    },
  };
}


/** A port nobody listens on now (the shop's URL must be known before it registers). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
