import {
  AddProductRequest,
  ChallengeRequest,
  CreditLimitRequest,
  DemoTopUpRequest,
  FundRequest,
  OperatorPaths,
  RegisterCustomerRequest,
  RefundRequest,
  RegisterMerchantRequest,
} from '@obol/protocol/api';
import { canonicalJson } from '@obol/protocol/canonicalJson';
import { newTradeHandle } from '@obol/protocol/identity';
import { type KeyHandle, type Signer, generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { type MessageType, MessageSchemas } from '@obol/protocol/messages';
import { certToBase64, issueTemporaryCert } from '@obol/protocol/pki';
import { signMessage } from '@obol/protocol/signed';
import { fromBase64Url, randomId, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import type { TSchema } from 'typebox';
import { postJson } from '../../../src/http/client.ts';
import { type TwoOperators, initiateBody, rawCustomer } from '../twoOperators.ts';
import { type JsonSchema, asJsonSchema } from './schemaMutations.ts';

/**
 * For every route of the operator and of the merchant module that reads a body: which server
 * gets it, the schema of what is mutated (the plain body, or the body of the signed message it
 * carries), a fresh valid body to mutate, and — for signed messages — the key the route trusts,
 * so a mutated body is signed correctly and reaches the checks behind the signature.
 */
export type Target = 'sek' | 'eur' | 'shop';

export interface RouteBody {
  target: Target;
  schema: JsonSchema;
  /** A valid body (a fresh msgId each call, so the handled-once table never answers for it). */
  valid(): Promise<unknown>;
  /** The body is the body of a message of this type, signed by `signer`, sent as is or as `{ [wrap]: message }`. */
  signed?: { type: MessageType; signer: Signer; wrap?: string };
  headers?: Record<string, string>;
  /** Money fields (dotted paths) where zero is a valid value (a record of nothing bought): not sent as hostile there. */
  zeroAllowed?: string[];
  /**
   * A route that refuses every message it cannot verify with one word, so a stranger learns
   * nothing (not even whether a transaction exists): broken envelopes are refused with it too.
   */
  deniedAs?: 'UNAUTHORIZED';
}

/** A signature over any body, valid or not (signMessage refuses to sign what its peers would refuse). */
export async function signAnything(type: string, body: unknown, signer: Signer): Promise<{ v: 1; type: string; kid: string; body: unknown; sig: string }> {
  let sig: string;
  try {
    sig = toBase64Url(await signer.sign(utf8.encode(canonicalJson({ v: 1, type, kid: signer.kid, body }))));
  } catch {
    // Not canonicalisable (e.g. a number JSON has no form for): what a client would send is the same bytes anyway.
    sig = 'A'.repeat(86);
  }
  return { v: 1, type, kid: signer.kid, body, sig };
}

/** The body a route's wrapper holds the signed message in, or the message itself. */
export function wrapSigned(route: RouteBody, message: unknown): unknown {
  return route.signed?.wrap ? { [route.signed.wrap]: message } : message;
}

export interface HostileFixture {
  routes: Record<string, RouteBody>;
  /** POST routes that take no body (every hostile body must still be answered without a 5xx). */
  noBody: Set<string>;
  /** A customer whose key the SEK operator knows (for envelope cases signed by the wrong party). */
  customerKey: KeyHandle;
}

const schemaOf = (s: TSchema) => asJsonSchema(s);
const message = (type: MessageType) => asJsonSchema(MessageSchemas[type] as TSchema);

/**
 * Builds the live state the valid bodies name (a registered, funded, logged-on customer; an
 * open trading session at the shop; the operators' and the shop's keys; an arbiter the EUR
 * operator trusts) and the table of route bodies.
 */
export async function hostileFixture(t: TwoOperators, o: { shopAdminToken: string; arbiterKey: KeyHandle }): Promise<HostileFixture> {
  const c = await rawCustomer(t, 'SEK:50.00');
  const sessionKey = await keyHandle(await generateSigningKeyPair());
  const initiate = await signMessage('wallet.initiate', await initiateBody(t, c.session.sessionId, sessionKey), c.key.signer);
  const ack = (await postJson(`${t.sek.url}${OperatorPaths.initiate}`, initiate)) as { body: { transactionId: string; handle: string; tempCert: string } };
  const handle = ack.body.handle;
  const now = () => t.clock.now();
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const admin = bearer(t.world.adminToken);
  const sek = t.sek.ctx.identity;
  const eur = t.eur.ctx.identity;
  const hash = () => toBase64Url(fromBase64Url(randomId(32)));
  const [product] = await t.shop.agent.products();
  if (!product) throw new Error('the shop has no product to order');

  const routes: Record<string, RouteBody> = {
    [`POST ${OperatorPaths.registerCustomer}`]: {
      target: 'sek',
      schema: schemaOf(RegisterCustomerRequest),
      valid: async () => ({ publicKey: (await keyHandle(await generateSigningKeyPair())).publicKeySpki, displayName: 'Eve' }),
    },
    [`POST ${OperatorPaths.challenge}`]: { target: 'sek', schema: schemaOf(ChallengeRequest), valid: async () => ({ customerId: c.customerId }) },
    [`POST ${OperatorPaths.login}`]: {
      target: 'sek',
      schema: message('wallet.login'),
      valid: async () => ({ msgId: randomId(), customerId: c.customerId, challenge: randomId(32), time: now() }),
      signed: { type: 'wallet.login', signer: c.key.signer },
    },
    [`POST ${OperatorPaths.demoTopUp}`]: {
      target: 'sek',
      schema: schemaOf(DemoTopUpRequest),
      valid: async () => ({ amount: 'SEK:1.00' }),
      headers: bearer(c.session.token),
    },
    [`POST ${OperatorPaths.initiate}`]: {
      target: 'sek',
      schema: message('wallet.initiate'),
      valid: async () => initiateBody(t, c.session.sessionId, await keyHandle(await generateSigningKeyPair())),
      signed: { type: 'wallet.initiate', signer: c.key.signer },
      // The first price is order information only (the deposit is what is reserved): a free first purchase is allowed.
      zeroAllowed: ['firstPrice'],
    },
    [`POST ${OperatorPaths.customerRecord}`]: {
      target: 'sek',
      schema: message('wallet.record'),
      valid: async () => ({ msgId: randomId(), transactionId: handle, count: 1, total: 'EUR:0.03', purchasesHash: hash(), time: now() }),
      signed: { type: 'wallet.record', signer: sessionKey.signer },
      zeroAllowed: ['total'],
    },
    [`POST ${OperatorPaths.peerClearing}`]: {
      target: 'sek',
      schema: message('acquirer.clearing'),
      valid: async () => ({
        msgId: randomId(),
        transactionId: handle,
        outcome: 'agreed',
        flagged: false,
        count: 1,
        charged: 'EUR:0.03',
        unused: 'EUR:0.14',
        time: now(),
      }),
      signed: { type: 'acquirer.clearing', signer: eur.key.signer },
      zeroAllowed: ['charged', 'unused'],
    },
    // Many clearings in one signed message: the batch's own fields and envelopes of its items.
    [`POST ${OperatorPaths.peerClearings}`]: {
      target: 'sek',
      schema: message('acquirer.clearings'),
      valid: async () => ({
        msgId: randomId(),
        clearings: [
          await signMessage(
            'acquirer.clearing',
            { msgId: randomId(), transactionId: handle, outcome: 'agreed', flagged: false, count: 1, charged: 'EUR:0.03', unused: 'EUR:0.14', time: now() },
            eur.key.signer,
          ),
        ],
        time: now(),
      }),
      signed: { type: 'acquirer.clearings', signer: eur.key.signer },
    },
    [`POST ${OperatorPaths.merchantRecord}`]: {
      target: 'eur',
      schema: message('merchant.record'),
      valid: async () => ({ msgId: randomId(), transactionId: handle, count: 1, total: 'EUR:0.03', purchasesHash: hash(), time: now(), proof: null }),
      signed: { type: 'merchant.record', signer: t.shop.key.signer },
      zeroAllowed: ['total'],
    },
    [`POST ${OperatorPaths.merchantStatement}`]: {
      target: 'eur',
      schema: message('merchant.statement'),
      valid: async () => ({ msgId: randomId(), merchantId: 'news.example', time: now(), limit: 10 }),
      signed: { type: 'merchant.statement', signer: t.shop.key.signer },
    },
    // Refunds after clearing (the valid body names the open session: refused as not cleared, nothing moves).
    [`POST ${OperatorPaths.merchantRefund}`]: {
      target: 'eur',
      schema: message('merchant.refund'),
      valid: async () => ({ refundId: randomId(), transactionId: handle, merchantId: 'news.example', amount: 'EUR:0.01', time: now() }),
      signed: { type: 'merchant.refund', signer: t.shop.key.signer },
    },
    [`POST ${OperatorPaths.peerRefund}`]: {
      target: 'sek',
      schema: message('acquirer.refund'),
      valid: async () => ({ msgId: randomId(), transactionId: handle, n: 1, refundId: randomId(), amount: 'EUR:0.01', refundedTotal: 'EUR:0.01', time: now() }),
      signed: { type: 'acquirer.refund', signer: eur.key.signer },
    },
    'POST /obol/admin/refunds': {
      target: 'shop',
      schema: schemaOf(RefundRequest),
      valid: async () => ({ transactionId: handle, amount: 'EUR:0.01', refundId: randomId() }),
      headers: bearer(o.shopAdminToken),
    },
    [`POST ${OperatorPaths.peerInitiate}`]: {
      target: 'eur',
      schema: message('am.initiate'),
      valid: async () => {
        const transactionId = newTradeHandle();
        const tempCert = certToBase64(
          await issueTemporaryCert({ publicKey: sessionKey.publicKeySpki, handle: transactionId, issuer: sek.issuer, notBefore: now() - 3_600_000, notAfter: now() + 3_600_000 }),
        );
        return {
          msgId: randomId(),
          transactionId,
          customerOperatorId: 'op-sek',
          pseudonym: randomId(16),
          merchantId: 'news.example',
          depositCustomer: 'SEK:2.00',
          depositMerchant: 'EUR:0.17',
          rate: '0.0874',
          tempCert,
          k1: randomId(32),
          timeoutSec: 600,
          expiresAt: now() + 600_000,
          time: now(),
        };
      },
      signed: { type: 'am.initiate', signer: sek.key.signer },
    },
    [`POST ${OperatorPaths.peerCustomerRecord}`]: {
      target: 'eur',
      schema: message('am.customerRecord'),
      valid: async () => ({
        msgId: randomId(),
        transactionId: handle,
        record: await signMessage('wallet.record', { msgId: randomId(), transactionId: handle, count: 1, total: 'EUR:0.03', purchasesHash: hash(), time: now() }, sessionKey.signer),
        time: now(),
      }),
      signed: { type: 'am.customerRecord', signer: sek.key.signer },
    },
    [`POST ${OperatorPaths.arbiterKey}`]: {
      target: 'eur',
      schema: message('arbiter.keyRequest'),
      valid: async () => ({ msgId: randomId(), transactionId: handle, merchantId: 'news.example', caseRef: 'case-1', time: now() }),
      signed: { type: 'arbiter.keyRequest', signer: o.arbiterKey.signer },
    },
    [`POST ${OperatorPaths.adminMerchants}`]: {
      target: 'sek',
      schema: schemaOf(RegisterMerchantRequest),
      valid: async () => ({
        merchantId: 'fuzz.example',
        publicKey: (await keyHandle(await generateSigningKeyPair())).publicKeySpki,
        origins: ['https://fuzz.example'],
        url: 'https://fuzz.example/obol',
        name: 'Fuzz',
      }),
      headers: admin,
    },
    [`POST ${OperatorPaths.adminFund}`]: { target: 'sek', schema: schemaOf(FundRequest), valid: async () => ({ customerId: c.customerId, amount: 'SEK:1.00' }), headers: admin },
    [`POST ${OperatorPaths.adminCreditLimit}`]: {
      target: 'sek',
      schema: schemaOf(CreditLimitRequest),
      valid: async () => ({ accountId: `customer:${c.customerId}`, limit: 'SEK:1.00' }),
      headers: admin,
      // A limit of zero takes credit away: valid.
      zeroAllowed: ['limit'],
    },
    'POST /obol/info': {
      target: 'shop',
      schema: message('acquirer.info'),
      valid: async () => ({
        msgId: randomId(),
        transactionId: newTradeHandle(),
        merchantId: 'news.example',
        pseudonym: randomId(16),
        deposit: 'EUR:0.17',
        tempCert: ack.body.tempCert,
        k1: randomId(32),
        timeoutSec: 600,
        expiresAt: now() + 600_000,
        time: now(),
      }),
      signed: { type: 'acquirer.info', signer: eur.key.signer },
    },
    'POST /obol/order': {
      target: 'shop',
      schema: message('wallet.order'),
      valid: async () => ({ transactionId: handle, n: 1, productId: product.productId, price: product.price, origin: t.shop.url, listSalt: randomId(32), time: now() }),
      signed: { type: 'wallet.order', signer: sessionKey.signer, wrap: 'order' },
    },
    'POST /obol/accept': {
      target: 'shop',
      schema: message('wallet.accept'),
      valid: async () => ({ acceptId: randomId(), transactionId: handle, n: 1, cumulative: product.price, commitment: hash(), time: now() }),
      signed: { type: 'wallet.accept', signer: sessionKey.signer, wrap: 'accept' },
    },
    'POST /obol/stop': {
      target: 'shop',
      schema: message('wallet.stop'),
      valid: async () => ({ msgId: randomId(), transactionId: handle, reason: 'wallet', time: now() }),
      signed: { type: 'wallet.stop', signer: sessionKey.signer, wrap: 'stop' },
    },
    'POST /obol/redeliver': {
      target: 'shop',
      schema: message('wallet.redeliver'),
      valid: async () => ({ msgId: randomId(), transactionId: handle, n: 1, acceptId: randomId(), time: now() }),
      signed: { type: 'wallet.redeliver', signer: sessionKey.signer, wrap: 'redeliver' },
      deniedAs: 'UNAUTHORIZED',
    },
    'POST /obol/admin/products': {
      target: 'shop',
      schema: schemaOf(AddProductRequest),
      valid: async () => ({ productId: 'fuzz-1', title: 'Fuzz', description: 'x', price: 'EUR:0.05', contentType: 'text/plain', content: 'aGVsbG8' }),
      headers: bearer(o.shopAdminToken),
    },
  };
  return { routes, noBody: new Set([`POST ${OperatorPaths.adminSettleDeadlines}`]), customerKey: c.key };
}
