/**
 * The arbiter (the seed's NBCP): judges FIG 4 evidence bundles. It holds its own signing key, with
 * which it authenticates to operators when it asks for K1, and the interbank root it trusts. The
 * operators it may ask are given by URL; each one's certificate is fetched once and checked to
 * chain to that root before its signed release of K1 is believed.
 *
 * Key folder (`obol arbiter init`): `arbiter.key.json` (the private key as JWK, mode 600),
 * `arbiter.pub` (the public key, SPKI base64url: what an operator puts in its `arbiters`
 * configuration) and `root.cert.pem` (the interbank root).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OperatorInfo, OperatorPaths } from '@obol/protocol/api';
import { type Clock, systemClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { KEY_ALG, type KeyHandle, keyHandle } from '@obol/protocol/keys';
import { checkSchema } from '@obol/protocol/messages';
import { type Cert, certToPem, operatorMessageKey, parseCert, verifyChain } from '@obol/protocol/pki';
import { signMessage, verifyMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { getJson, postJson } from '../http/client.ts';
import { type ArbiterReport, caseRefOf, judge } from './judge.ts';

export interface ArbiterOptions {
  key: KeyHandle;
  root: Cert;
  /** Base URLs of the operators the arbiter may ask for K1 (each as the trusted party of its merchants). */
  operators: string[];
  clock?: Clock;
  /** HTTP to the operators (default: undici JSON). */
  http?: { get(url: string): Promise<unknown>; post(url: string, body: unknown): Promise<unknown> };
}

interface KnownOperator {
  operatorId: string;
  url: string;
  kid: string;
  key: CryptoKey;
}

export class Arbiter {
  readonly key: KeyHandle;
  readonly root: Cert;
  private readonly clock: Clock;
  private readonly urls: string[];
  private readonly http: NonNullable<ArbiterOptions['http']>;
  private known: Promise<Map<string, KnownOperator>> | undefined;

  constructor(opts: ArbiterOptions) {
    this.key = opts.key;
    this.root = opts.root;
    this.clock = opts.clock ?? systemClock;
    this.urls = opts.operators.map((u) => u.replace(/\/+$/, ''));
    this.http = opts.http ?? { get: (url) => getJson(url), post: (url, body) => postJson(url, body) };
  }

  /** An arbiter from its key folder. */
  static async fromKeyDir(dir: string, opts: Omit<ArbiterOptions, 'key' | 'root'>): Promise<Arbiter> {
    const { key, root } = await loadArbiterKeyDir(dir);
    return new Arbiter({ ...opts, key, root });
  }

  /** Judges one evidence bundle (either side's): MALFORMED when it is not one, a report otherwise. */
  async judge(evidence: unknown): Promise<ArbiterReport> {
    const caseRef =
      evidence && typeof evidence === 'object' && 'accept' in evidence && 'transactionId' in evidence && 'n' in evidence
        ? await caseRefOf(evidence as { transactionId: string; n: number; accept: { sig: string } }).catch(() => `case-${randomId(6)}`)
        : `case-${randomId(6)}`;
    return judge(evidence, {
      root: this.root,
      clock: this.clock,
      caseRef,
      obtainK1: (request) => this.obtainK1(request),
    });
  }

  /**
   * Asks the merchant's operator (the trusted party) for K1 with a request signed by the arbiter's
   * key, and believes only an answer signed by that operator's key (certificate checked to the
   * root) that names this transaction and merchant.
   */
  async obtainK1(r: { transactionId: string; merchantId: string; merchantOperatorId: string; caseRef: string }): Promise<{ k1: string; operatorId: string }> {
    const operator = (await this.operators()).get(r.merchantOperatorId);
    if (!operator) {
      throw new ObolError('UNKNOWN_OPERATOR', `the evidence names ${r.merchantOperatorId} as the merchant's operator; this arbiter may ask only ${[...(await this.operators()).keys()].join(', ') || 'no operator'}`);
    }
    const request = await signMessage(
      'arbiter.keyRequest',
      { msgId: randomId(), transactionId: r.transactionId, merchantId: r.merchantId, caseRef: r.caseRef.slice(0, 120), time: this.clock.now() },
      this.key.signer,
    );
    const answer = await this.http.post(`${operator.url}${OperatorPaths.arbiterKey}`, request);
    const release = await verifyMessage(answer, 'acquirer.keyRelease', (kid) => (kid === operator.kid ? operator.key : undefined));
    const b = release.body;
    if (b.requestMsgId !== request.body.msgId || b.transactionId !== r.transactionId || b.merchantId !== r.merchantId) {
      throw new ObolError('CONFLICT', `operator ${operator.operatorId} answered for another request`);
    }
    return { k1: b.k1, operatorId: operator.operatorId };
  }

  /** The configured operators, each checked once: its certificate chains to our root and names it. */
  private operators(): Promise<Map<string, KnownOperator>> {
    this.known ??= (async () => {
      const map = new Map<string, KnownOperator>();
      for (const url of this.urls) {
        const info = await this.http.get(`${url}${OperatorPaths.info}`);
        checkSchema(OperatorInfo, info, `operator information from ${url}`);
        const cert = parseCert(info.operatorCert);
        const d = await verifyChain(cert, { trustedRoots: [this.root] }, { now: this.clock.now(), expectKind: 'operator' });
        if (d.subjectId !== info.operatorId) throw new ObolError('CERT_UNTRUSTED', `${url} says it is ${info.operatorId}, its certificate says ${d.subjectId}`);
        // Its releases are signed with its message key, certified by the operator certificate.
        const signing = await operatorMessageKey(info.signingCert, cert, this.clock.now());
        map.set(info.operatorId, { operatorId: info.operatorId, url, kid: signing.kid, key: signing.key });
      }
      return map;
    })().catch((e: unknown) => {
      this.known = undefined; // an operator that was down is asked again next time
      throw e;
    });
    return this.known;
  }
}

// ── key folder ────────────────────────────────────────────────────────────────────────────────

/** Makes an arbiter key folder; returns the public key (SPKI base64url) to configure operators with. */
export async function createArbiterKeyDir(dir: string, rootCert: Cert | string): Promise<{ publicKey: string; kid: string }> {
  const root = typeof rootCert === 'string' ? parseCert(rootCert) : rootCert;
  const pair = (await crypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const handle = await keyHandle(pair);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'arbiter.key.json'), JSON.stringify(await crypto.subtle.exportKey('jwk', pair.privateKey)), { mode: 0o600 });
  await writeFile(join(dir, 'arbiter.pub'), `${handle.publicKeySpki}\n`);
  await writeFile(join(dir, 'root.cert.pem'), certToPem(root));
  return { publicKey: handle.publicKeySpki, kid: handle.kid };
}

/** Loads an arbiter key folder; the private key is imported non-extractable. */
export async function loadArbiterKeyDir(dir: string): Promise<{ key: KeyHandle; root: Cert }> {
  let jwk: JsonWebKey;
  let rootPem: string;
  try {
    jwk = JSON.parse(await readFile(join(dir, 'arbiter.key.json'), 'utf8')) as JsonWebKey;
    rootPem = await readFile(join(dir, 'root.cert.pem'), 'utf8');
  } catch (e) {
    throw new ObolError('MALFORMED', `${dir} is not an arbiter key folder (arbiter.key.json, root.cert.pem): ${(e as Error).message}`);
  }
  const privateKey = await crypto.subtle.importKey('jwk', jwk, KEY_ALG, false, ['sign']);
  const { d: _d, ...publicJwk } = jwk;
  const publicKey = await crypto.subtle.importKey('jwk', { ...publicJwk, key_ops: ['verify'] }, KEY_ALG, true, ['verify']);
  return { key: await keyHandle({ privateKey, publicKey }), root: parseCert(rootPem) };
}
