/**
 * The arbiter's judgment (FIG 4 disputes; the seed's NBCP): from one evidence bundle, either side's,
 * it decides what the merchant promised, what it delivered, and who signed what.
 *
 *   1. The certificates: the merchant's and the temporary certificate, through the operator
 *      certificate(s) in the bundle, to the interbank root the arbiter trusts. That ties the
 *      merchant's signatures to a merchant and the accept's signature to this transaction's
 *      session key.
 *   2. Every signature: description, encrypted product, wrapped key (merchant); accept (shopper).
 *      A part that fails its signer's check was altered after it was signed — by whoever presents
 *      the bundle, since each side checked the other's signatures when the part arrived.
 *   3. The ties between the signed parts: the accept commits (salted, so that the merchant's
 *      operator, which holds it as proof, learns nothing) to the product id, the price, the
 *      description (by hash) and the ciphertext (by hash); the presenting side reveals the opening
 *      and the salt, and the arbiter recomputes the commitment (`purchaseCommitment`) before it
 *      believes any of it; the product message names the id and the ciphertext; the key names the
 *      accept. A part swapped in from elsewhere breaks a tie and is named.
 *   4. K1 from the trusted party (the merchant's operator), never from either side; K2 unwrapped
 *      from the merchant's signed [K2]^K1; the product decrypted; its SHA-256 compared with the
 *      description's. Neither side can bend this: K1 is what the operator relayed at initiation.
 */
import { canonicalJson } from '@obol/protocol/canonicalJson';
import type { Clock } from '@obol/protocol/clock';
import { decryptProduct, descriptionHash, hashB64, unwrapProductKey } from '@obol/protocol/delivery';
import { EvidenceBundle } from '@obol/protocol/evidence';
import { purchaseCommitment } from '@obol/protocol/purchaseList';
import { type KeyResolver, importPublicKey, keyIdOf } from '@obol/protocol/keys';
import { type MessageType, checkSchema } from '@obol/protocol/messages';
import { type Cert, type CertDescription, parseCert, verifyChain } from '@obol/protocol/pki';
import { type Signed, verifyMessage } from '@obol/protocol/signed';
import { type WebCrypto, defaultCrypto, fromBase64Url, utf8 } from '@obol/protocol/webcrypto';

/**
 * - for-shopper: the merchant was paid (the shopper's accept) but delivered something else than it
 *   described, or a key that does not open what it delivered.
 * - for-merchant: the merchant delivered exactly what it described.
 * - evidence-altered: a part of the evidence is not what its signer signed, or was swapped in.
 * - key-not-delivered: the shopper accepted (so the merchant may claim payment) and holds no key
 *   from the merchant for it: the merchant must hand over its signed key, or refund.
 * - cannot-judge: the certificates do not tie the signatures to anyone the arbiter trusts.
 */
export type Verdict = 'for-shopper' | 'for-merchant' | 'evidence-altered' | 'key-not-delivered' | 'cannot-judge';

export interface SignatureFinding {
  part: 'description' | 'encrypted product' | 'accept' | 'wrapped key' | 'release of K1';
  signer: string;
  valid: boolean;
  says: string;
}

export interface ArbiterReport {
  caseRef: string;
  verdict: Verdict;
  /** The decision in a sentence or two. */
  summary: string;
  presentedBy: 'shopper' | 'merchant';
  purchase: {
    transactionId: string;
    n: number;
    merchantId: string;
    merchantOperatorId: string;
    productId: string;
    price: string;
    cumulative: string;
    acceptedAt: string;
  };
  /** What the merchant's signed description promises, when that signature holds. */
  promised: { productId: string; title: string; description: string; price: string; contentType: string; contentHash: string } | null;
  /** What the product decrypts to, when the arbiter could open it. */
  delivered: { size: number; contentHash: string; matchesPromise: boolean; firstBytes: string } | null;
  signatures: SignatureFinding[];
  /** Each altered or swapped part, named with the side that presented it. */
  alterations: string[];
  /** Other facts, in plain words. */
  findings: string[];
  /** The operator whose signed release of K1 was used, if it was asked. */
  k1ReleasedBy: string | null;
  judgedAt: number;
}

export interface JudgeOptions {
  /** The interbank root the arbiter trusts. */
  root: Cert;
  clock: Clock;
  crypto?: WebCrypto;
  caseRef: string;
  /**
   * K1 from the trusted party: the merchant's operator's signed release, already verified to the
   * root and checked to name this transaction and merchant.
   */
  obtainK1(request: { transactionId: string; merchantId: string; merchantOperatorId: string; caseRef: string }): Promise<{ k1: string; operatorId: string }>;
}

const PREVIEW_BYTES = 64;

export async function judge(evidence: unknown, opts: JudgeOptions): Promise<ArbiterReport> {
  checkSchema(EvidenceBundle, evidence, 'evidence');
  const e = evidence;
  const crypto = opts.crypto ?? defaultCrypto();
  const side = e.presentedBy;
  const copy = `the ${side}'s copy`;
  const acceptBody = e.accept.body as Partial<Signed<'wallet.accept'>['body']>;
  const report: ArbiterReport = {
    caseRef: opts.caseRef,
    verdict: 'cannot-judge',
    summary: '',
    presentedBy: side,
    purchase: {
      transactionId: e.transactionId,
      n: e.n,
      merchantId: e.merchantId,
      merchantOperatorId: e.merchantOperatorId,
      // As the opening says, until it is checked against the accept's commitment.
      productId: e.opening.productId,
      price: e.opening.price,
      cumulative: str(acceptBody.cumulative),
      acceptedAt: typeof acceptBody.time === 'number' ? new Date(acceptBody.time).toISOString() : '?',
    },
    promised: null,
    delivered: null,
    signatures: [],
    alterations: [],
    findings: [],
    k1ReleasedBy: null,
    judgedAt: opts.clock.now(),
  };
  const done = (verdict: Verdict, summary: string) => {
    report.verdict = verdict;
    report.summary = summary;
    return report;
  };

  // 1. Certificates, at the time the shopper accepted (what counts is that they were valid then).
  const at = typeof acceptBody.time === 'number' ? acceptBody.time : opts.clock.now();
  let intermediates: Cert[];
  let merchant: CertDescription;
  let temp: CertDescription;
  try {
    intermediates = e.operatorCerts.map((c) => parseCert(c));
    for (const op of intermediates) await verifyChain(op, { trustedRoots: [opts.root] }, { now: at, expectKind: 'operator' }, crypto);
  } catch (err) {
    return done('cannot-judge', `The operator certificate in the evidence does not chain to the interbank root (${msg(err)}): no signature in it can be tied to anyone.`);
  }
  try {
    merchant = await verifyChain(e.merchantCert, { trustedRoots: [opts.root], intermediates }, { now: at, expectKind: 'merchant' }, crypto);
  } catch (err) {
    return done('cannot-judge', `The merchant certificate in the evidence does not verify (${msg(err)}): the merchant's signatures cannot be tied to a merchant.`);
  }
  try {
    temp = await verifyChain(e.tempCert, { trustedRoots: [opts.root], intermediates }, { now: at, expectKind: 'temporary' }, crypto);
  } catch (err) {
    return done('cannot-judge', `The temporary certificate in the evidence does not verify (${msg(err)}): the accept cannot be tied to the transaction's session key.`);
  }
  const merchantId = merchant.merchantId ?? merchant.subjectId;
  const transactionId = temp.transactionId ?? e.transactionId;
  if (merchantId !== e.merchantId) report.findings.push(`The evidence names merchant ${e.merchantId}, but the merchant certificate is ${merchantId}'s; the certificate counts.`);
  if (transactionId !== e.transactionId) {
    report.findings.push(`The evidence names transaction ${e.transactionId}, but the temporary certificate is for ${transactionId}; the certificate counts.`);
  }
  report.purchase.merchantId = merchantId;
  report.purchase.transactionId = transactionId;
  const merchantKey = await resolverOf(merchant.publicKeySpki, crypto);
  const sessionKey = await resolverOf(temp.publicKeySpki, crypto);
  const merchantName = `merchant ${merchantId} (certificate issued by ${merchant.issuerName}, chaining to the interbank root)`;
  const shopperName = `the shopper's session key for transaction ${transactionId} (temporary certificate issued by ${temp.issuerName})`;

  // 2. Every signature.
  const check = async <T extends MessageType>(
    message: unknown,
    type: T,
    resolve: KeyResolver,
    part: SignatureFinding['part'],
    signer: string,
    says: (m: Signed<T>) => string,
    altered: string,
  ): Promise<Signed<T> | undefined> => {
    try {
      const m = await verifyMessage(message, type, resolve, crypto);
      report.signatures.push({ part, signer, valid: true, says: says(m) });
      return m;
    } catch (err) {
      report.signatures.push({ part, signer, valid: false, says: `does not verify (${msg(err)})` });
      report.alterations.push(altered);
      return undefined;
    }
  };
  const description = await check(
    e.description,
    'merchant.description',
    merchantKey,
    'description',
    merchantName,
    (m) => `${m.body.productId}, "${m.body.title}", ${m.body.price}, ${m.body.contentType}, content SHA-256 ${m.body.contentHash}`,
    `The description was not signed by the merchant: ${copy} was altered.`,
  );
  const product = await check(
    e.product,
    'merchant.product',
    merchantKey,
    'encrypted product',
    merchantName,
    (m) => `${m.body.productId}, ${m.body.size} encrypted bytes with SHA-256 ${m.body.ciphertextHash}`,
    `The encrypted product's id and hash were not signed by the merchant: ${copy} was altered.`,
  );
  const accept = await check(
    e.accept,
    'wallet.accept',
    sessionKey,
    'accept',
    shopperName,
    (m) => `accepts purchase ${m.body.n} (commitment ${m.body.commitment}, cumulative ${m.body.cumulative}) at ${new Date(m.body.time).toISOString()}`,
    `The accept was not signed by the shopper's session key: ${copy} was altered.`,
  );
  const key = e.key
    ? await check(
        e.key,
        'merchant.key',
        merchantKey,
        'wrapped key',
        merchantName,
        (m) => `sends K2 wrapped with K1 for purchase ${m.body.n} (accept ${m.body.acceptId})`,
        `The wrapped key was not signed by the merchant: ${copy} was altered.`,
      )
    : undefined;
  if (description) {
    const d = description.body;
    report.promised = { productId: d.productId, title: d.title, description: d.description, price: d.price, contentType: d.contentType, contentHash: d.contentHash };
  }

  // 3. The ties between the parts.
  const ciphertext = fromBase64Url(e.ciphertext);
  const ciphertextHash = await hashB64(ciphertext, crypto);
  const opening = e.opening;
  if (accept) {
    const a = accept.body;
    if (a.transactionId !== transactionId) report.alterations.push(`The accept is for transaction ${a.transactionId}, not ${transactionId}: ${copy} mixes two purchases.`);
    if (a.n !== e.n) report.findings.push(`The evidence calls this purchase ${e.n}; the accept is for purchase ${a.n}.`);
    const { listSalt, ...details } = opening;
    if (opening.n !== a.n || (await purchaseCommitment(listSalt, details, crypto)) !== a.commitment) {
      report.alterations.push(
        `The opening (product ${opening.productId} at ${opening.price}, with its hashes and salt) is not what the shopper's signed accept commits to: ${copy} was altered.`,
      );
    } else {
      // The opening is what the shopper signed: each part must be the one it names.
      if (description && opening.productId !== description.body.productId) {
        report.alterations.push(`The description is for product ${description.body.productId}, but the shopper accepted product ${opening.productId}: ${copy} swapped in another product's description.`);
      } else if (description && (await descriptionHash(description.body, crypto)) !== opening.descriptionHash) {
        report.alterations.push(`The description is not the one the shopper accepted (its hash is not the one the signed accept commits to): ${copy} was altered or swapped.`);
      }
      if (product && opening.productId !== product.body.productId) {
        report.alterations.push(`The encrypted product is signed as ${product.body.productId}, but the shopper accepted ${opening.productId}: ${copy} swapped in another product.`);
      }
      if (opening.receivedHash !== ciphertextHash) {
        report.alterations.push(`The ciphertext is not the one the shopper accepted (its SHA-256 is not the received hash the accept commits to): ${copy} was altered.`);
      }
    }
  }
  if (product && product.body.ciphertextHash !== ciphertextHash) {
    report.alterations.push(`The ciphertext is not the one the merchant signed: ${copy} was altered.`);
  }
  let keyForThis = key;
  if (key && accept) {
    const k = key.body;
    const a = accept.body;
    if (k.acceptId !== a.acceptId || k.n !== a.n || k.transactionId !== a.transactionId || k.productId !== opening.productId) {
      report.findings.push(`The wrapped key in the evidence answers another accept (${k.transactionId} #${k.n}, ${k.productId}): it proves nothing about this purchase.`);
      keyForThis = undefined;
    }
  }
  if (report.alterations.length > 0) {
    return done('evidence-altered', `The evidence presented by the ${side} was altered: ${report.alterations.join(' ')} Nothing in it can be held against the other side.`);
  }
  if (!description || !product || !accept) return done('cannot-judge', 'A signed part is missing.'); // unreachable: each failure above is an alteration
  const a = { ...accept.body, productId: opening.productId, price: opening.price };
  report.purchase.productId = a.productId;
  report.purchase.price = a.price;
  report.purchase.cumulative = a.cumulative;
  report.purchase.acceptedAt = new Date(a.time).toISOString();

  if (!keyForThis) {
    return done(
      'key-not-delivered',
      `The shopper accepted purchase ${a.n} (${a.productId} at ${a.price}), so the merchant may claim payment for it, but the evidence holds no key signed by the merchant for that accept. ` +
        `The merchant must hand over its signed key ([K2]^K1) for accept ${a.acceptId}, or refund ${a.price}.`,
    );
  }

  // 4. K1 from the trusted party, K2 from the merchant's signed wrap, the content from K2.
  const released = await opts.obtainK1({ transactionId, merchantId, merchantOperatorId: e.merchantOperatorId, caseRef: opts.caseRef });
  report.k1ReleasedBy = released.operatorId;
  report.signatures.push({
    part: 'release of K1',
    signer: `operator ${released.operatorId} (the trusted party, chaining to the interbank root)`,
    valid: true,
    says: `K1 of transaction ${transactionId}, as relayed to merchant ${merchantId} at initiation`,
  });
  let k2: CryptoKey;
  try {
    k2 = await unwrapProductKey(keyForThis.body.wrappedK2, released.k1, crypto);
  } catch {
    return done(
      'for-shopper',
      `The merchant was paid (the shopper's accept) but the key it signed does not open with the K1 the trusted party relayed to it: the shopper never received a key to the product.`,
    );
  }
  let content: Uint8Array;
  try {
    content = await decryptProduct(ciphertext, product.body.iv, k2, product.body.productId, crypto);
  } catch {
    return done('for-shopper', 'The merchant was paid (the shopper\'s accept) but its key does not decrypt the product it signed: the shopper received nothing usable.');
  }
  const contentHash = await hashB64(content, crypto);
  const matches = contentHash === description.body.contentHash;
  report.delivered = { size: content.length, contentHash, matchesPromise: matches, firstBytes: preview(content) };
  if (matches) {
    return done(
      'for-merchant',
      `The merchant delivered exactly what it described: the product decrypts to content whose SHA-256 is the one in its signed description of ${a.productId}. The shopper's accept of ${a.price} stands.`,
    );
  }
  return done(
    'for-shopper',
    `The merchant delivered something else than it described: the product it signed and was paid for (${a.price}) decrypts to content that is not what its signed description of ${a.productId} promises.`,
  );
}

async function resolverOf(spki: string, crypto: WebCrypto): Promise<KeyResolver> {
  const kid = await keyIdOf(spki, crypto);
  const key = await importPublicKey(spki, crypto);
  return (k) => (k === kid ? key : undefined);
}

/** The first bytes of the content, as text when they read as text, otherwise in hex. */
export function preview(content: Uint8Array): string {
  const head = content.slice(0, PREVIEW_BYTES);
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head);
  } catch {
    // a multi-byte character cut at the edge, or not text: try one byte shorter, else hex
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(head.slice(0, -1));
    } catch {
      text = undefined;
    }
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused here
  if (text !== undefined && !/[\u0000-\u0008\u000b\u000e-\u001f\u007f]/.test(text)) {
    return JSON.stringify(text) + (content.length > PREVIEW_BYTES ? ' …' : '');
  }
  const hex = Array.from(head, (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `hex ${hex}${content.length > PREVIEW_BYTES ? ' …' : ''}`;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '?';
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A stable reference for a case: the purchase and the accept's signature. */
export async function caseRefOf(evidence: { transactionId: string; n: number; accept: { sig: string } }, crypto: WebCrypto = defaultCrypto()): Promise<string> {
  const digest = await hashB64(utf8.encode(canonicalJson([evidence.transactionId, evidence.n, evidence.accept.sig])), crypto);
  return `${evidence.transactionId}:${evidence.n}/${digest.slice(0, 10)}`;
}

