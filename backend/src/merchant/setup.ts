/**
 * A merchant's folder: what `obol merchant init` writes and `obol merchant serve` reads, so a
 * merchant sells without writing key-generation code.
 *
 *   shop.json                  the configuration (below): who the shop is, its operator, where it listens
 *   merchant.key.json          the merchant's signing key (JWK, 0600); never leaves the folder
 *   data.key.json              the data key sealing K1 and K2 in the shop's database (0600)
 *   registration-request.json  for the operator: signed with merchant.key, so it proves the key
 *   registration.json          the operator's answer: the merchant's certificate and the operator's
 *
 * Relative paths in shop.json are relative to the folder of shop.json.
 */
import { serverCrypto } from '../crypto/nodeCrypto.ts';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { RegisterMerchantResponse } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { KEY_ALG, type KeyHandle, generateSigningKeyPair, importPublicKey, keyHandle, keyIdOf } from '@obol/protocol/keys';
import { type MessageBody, checkSchema } from '@obol/protocol/messages';
import { type Signed, signMessage, verifyMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import Type, { type Static } from 'typebox';
import { loadOrCreateSealKeys } from '../store/sealedColumn.ts';
import { makePrivateDir, PRIVATE_FILE_MODE } from '../store/privateFiles.ts';

export const SHOP_CONFIG_FILE = 'shop.json';
export const MERCHANT_KEY_FILE = 'merchant.key.json';
export const REGISTRATION_REQUEST_FILE = 'registration-request.json';
export const REGISTRATION_FILE = 'registration.json';
/** Where the standalone server mounts the merchant module under its public URL. */
export const MODULE_PATH = '/obol';

const Origin = Type.String({ pattern: '^https?://[a-z0-9.-]+(:[0-9]{1,5})?$', maxLength: 255 });

/** `shop.json`. Every field is written by `obol merchant init`; the merchant may edit it after. */
export const ShopConfig = Type.Object(
  {
    merchantId: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{0,62}$' }),
    /** Shown to shoppers. */
    name: Type.String({ minLength: 1, maxLength: 80 }),
    /** The shop's prices are in this currency (its operator's). */
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    operatorId: Type.String({ minLength: 1, maxLength: 64 }),
    /** The operator's base URL (its acquirer is reached there). */
    operatorUrl: Type.String({ pattern: '^https?://', maxLength: 255 }),
    /** The origins the shop's pages are served from: every order must name one of them. */
    origins: Type.Array(Origin, { minItems: 1, maxItems: 16 }),
    /** Where browsers reach this server (its own origin); the module is at `<publicUrl>/obol`. */
    publicUrl: Origin,
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    /** The shop's database: a PGlite folder (default `data`), or PostgreSQL by URL (or DATABASE_URL). */
    dataDir: Type.Optional(Type.String({ minLength: 1 })),
    databaseUrl: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    /** The shop's administration token: adding products, its sales. */
    adminToken: Type.String({ minLength: 16, maxLength: 256 }),
    /** A folder of the shop's own pages to serve at `/` (a static blog); none: only the module. */
    pages: Type.Optional(Type.String({ minLength: 1 })),
    /** Serve HTTPS with this chain and key (PEM files). */
    tls: Type.Optional(Type.Object({ cert: Type.String(), key: Type.String() }, { additionalProperties: false })),
    /** The operator serves HTTPS under its own PKI: the chain to trust (PEM file). */
    operatorCa: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type ShopConfig = Static<typeof ShopConfig>;

/** A loaded shop: its configuration with every path made absolute, and the folder it came from. */
export interface ShopFolder {
  dir: string;
  config: ShopConfig;
}

export interface InitMerchantOptions {
  dir: string;
  merchantId: string;
  name: string;
  currency: string;
  operatorId: string;
  operatorUrl: string;
  /** Where browsers will reach the merchant server (its origin), e.g. https://pay.blog.example */
  publicUrl: string;
  /** The shop's page origins; default: the public URL's. */
  origins?: string[];
  port?: number;
  now: number;
}

export interface InitMerchantResult {
  configFile: string;
  requestFile: string;
  kid: string;
}

/**
 * Make a merchant's folder: a fresh key, the data key, the configuration and the signed
 * registration request. Refuses to touch a folder that already holds a merchant key (that key
 * may already be registered; replacing it would orphan the shop's certificate).
 */
export async function initMerchant(o: InitMerchantOptions): Promise<InitMerchantResult> {
  const dir = resolve(o.dir);
  if (existsSync(join(dir, MERCHANT_KEY_FILE))) {
    throw new ObolError('MALFORMED', `${join(dir, MERCHANT_KEY_FILE)} exists already: this folder has a merchant key; use another folder`);
  }
  const publicUrl = originOf(o.publicUrl, 'the public URL');
  const config: ShopConfig = {
    merchantId: o.merchantId,
    name: o.name,
    currency: o.currency,
    operatorId: o.operatorId,
    operatorUrl: o.operatorUrl.replace(/\/+$/, ''),
    origins: (o.origins && o.origins.length > 0 ? o.origins : [publicUrl]).map((x) => originOf(x, 'an origin')),
    publicUrl,
    port: o.port ?? (Number(new URL(publicUrl).port) || 7300),
    dataDir: 'data',
    adminToken: `shop-${randomId()}${randomId()}`,
  };
  checkSchema(ShopConfig, config, SHOP_CONFIG_FILE);

  await makePrivateDir(dir);
  const key = await loadOrCreateMerchantKey(dir);
  await loadOrCreateSealKeys(dir);
  const configFile = join(dir, SHOP_CONFIG_FILE);
  // The configuration holds the shop's admin token: the owner's eyes only.
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: PRIVATE_FILE_MODE });
  const request = await signRegistration(config, key, o.now);
  const requestFile = join(dir, REGISTRATION_REQUEST_FILE);
  await writeFile(requestFile, `${JSON.stringify(request, null, 2)}\n`);
  return { configFile, requestFile, kid: key.kid };
}

/** The registration request for this shop, signed with its key. */
export async function signRegistration(config: ShopConfig, key: KeyHandle, now: number): Promise<Signed<'merchant.registration'>> {
  return signMessage(
    'merchant.registration',
    {
      merchantId: config.merchantId,
      operatorId: config.operatorId,
      publicKey: key.publicKeySpki,
      origins: config.origins,
      url: `${config.publicUrl}${MODULE_PATH}`,
      name: config.name,
      time: now,
    },
    key.signer,
  );
}

/**
 * The operator's check of a registration request: signed by the key it names (so the sender
 * holds it), addressed to this operator. Returns what to register.
 */
export async function verifyRegistration(request: unknown, operatorId: string): Promise<MessageBody<'merchant.registration'>> {
  const signed = await verifyMessage(request, 'merchant.registration', async (kid) => {
    const body = (request as { body?: { publicKey?: unknown } }).body;
    if (typeof body?.publicKey !== 'string') return undefined;
    // The key id must be the id of the key in the body: the request signs for itself.
    const key = await importPublicKey(body.publicKey).catch(() => undefined);
    return key && (await keyIdOf(body.publicKey)) === kid ? key : undefined;
  });
  if (signed.body.operatorId !== operatorId) {
    throw new ObolError('UNKNOWN_OPERATOR', `this registration request is for operator ${signed.body.operatorId}, not ${operatorId}`);
  }
  return signed.body;
}

/** Read `shop.json` (a file, or the folder holding it), checked, with its paths made absolute. */
export async function loadShopFolder(configPath: string): Promise<ShopFolder> {
  const file = configPath.endsWith('.json') ? resolve(configPath) : join(resolve(configPath), SHOP_CONFIG_FILE);
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ObolError('MALFORMED', `${file}: ${e.code === 'ENOENT' ? 'no such file (run `obol merchant init` first)' : e.message}`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ObolError('MALFORMED', `${file} is not JSON`);
  }
  checkSchema(ShopConfig, json, file);
  const dir = dirname(file);
  const abs = (p: string) => (isAbsolute(p) ? p : join(dir, p));
  const config: ShopConfig = {
    ...json,
    ...(json.dataDir ? { dataDir: abs(json.dataDir) } : {}),
    ...(json.pages ? { pages: abs(json.pages) } : {}),
    ...(json.tls ? { tls: { cert: abs(json.tls.cert), key: abs(json.tls.key) } } : {}),
    ...(json.operatorCa ? { operatorCa: abs(json.operatorCa) } : {}),
  };
  if (!config.databaseUrl && !config.dataDir) config.dataDir = join(dir, 'data');
  return { dir, config };
}

/**
 * The merchant's signing key in its folder (JWK, 0600), made when missing. A shop restarted on its
 * folder signs with the key its open sessions were opened under: wallets check every delivery
 * against the merchant certificate they got at initiation.
 */
export async function loadOrCreateMerchantKey(dir: string): Promise<KeyHandle> {
  const file = join(dir, MERCHANT_KEY_FILE);
  if (!existsSync(file)) {
    await makePrivateDir(dir);
    const pair = await generateSigningKeyPair(true);
    const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
    // `wx`: two processes starting at once on one folder never overwrite each other's key.
    await writeFile(file, JSON.stringify(jwk), { mode: PRIVATE_FILE_MODE, flag: 'wx' }).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    });
  }
  await chmod(file, PRIVATE_FILE_MODE);
  return loadMerchantKey(dir);
}

/** The merchant's signing key from its folder (non-extractable once loaded). */
export async function loadMerchantKey(dir: string): Promise<KeyHandle> {
  const file = join(dir, MERCHANT_KEY_FILE);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new ObolError('MALFORMED', `${file} is missing: the shop folder has no merchant key (run \`obol merchant init\`)`);
  });
  let jwk: JsonWebKey;
  let privateKey: CryptoKey;
  try {
    jwk = JSON.parse(text) as JsonWebKey;
    privateKey = await crypto.subtle.importKey('jwk', jwk, KEY_ALG, false, ['sign']);
  } catch {
    throw new ObolError('MALFORMED', `${file} is not a merchant key file (a P-256 private key as JWK)`);
  }
  const { d: _d, ...publicJwk } = jwk;
  const publicKey = await crypto.subtle.importKey('jwk', { ...publicJwk, key_ops: ['verify'] }, KEY_ALG, true, ['verify']);
  // Signs through the servers' crypto handle (node:crypto for ES256: the same signatures, faster).
  return keyHandle({ privateKey, publicKey }, serverCrypto);
}

/** The operator's answer (`registration.json`), checked; a clear sentence when it is not there yet. */
export async function loadRegistration(dir: string): Promise<Static<typeof RegisterMerchantResponse>> {
  const file = join(dir, REGISTRATION_FILE);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new ObolError(
      'MALFORMED',
      `${file} is missing: the shop is not registered yet. Send ${join(dir, REGISTRATION_REQUEST_FILE)} to your operator ` +
        `(\`obol register-merchant --request FILE --out registration.json\`) and put the registration.json it gives you in ${dir}`,
    );
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ObolError('MALFORMED', `${file} is not JSON`);
  }
  checkSchema(RegisterMerchantResponse, json, file);
  return json;
}

function originOf(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ObolError('MALFORMED', `${what} is not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ObolError('MALFORMED', `${what} must be http(s): ${url}`);
  return u.origin;
}
