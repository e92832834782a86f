import { canonicalJson } from './canonicalJson.ts';
import { ObolError } from './errors.ts';
import { type KeyResolver, SIGN_ALG, type Signer } from './keys.ts';
import { type MessageBody, type MessageType, checkMessageBody } from './messages.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, toBase64Url, utf8 } from './webcrypto.ts';

/**
 * A signed message: `{ v, type, kid, body, sig }`. The signature covers the RFC 8785 canonical
 * JSON of `{ v, type, kid, body }`, so neither the message type nor the claimed signer can be
 * swapped without breaking it: a valid `wallet.accept` can never be replayed as a `wallet.order`.
 */
export interface Signed<T extends MessageType = MessageType> {
  v: 1;
  type: T;
  kid: string;
  body: MessageBody<T>;
  sig: string;
}

function signingInput(v: 1, type: string, kid: string, body: unknown): Uint8Array<ArrayBuffer> {
  return utf8.encode(canonicalJson({ v, type, kid, body }));
}

export async function signMessage<T extends MessageType>(
  type: T,
  body: MessageBody<T>,
  signer: Signer,
): Promise<Signed<T>> {
  // Check our own output too: a party must never sign a message its peers will refuse.
  checkMessageBody(type, body);
  const sig = await signer.sign(signingInput(1, type, signer.kid, body));
  return { v: 1, type, kid: signer.kid, body, sig: toBase64Url(sig) };
}

/**
 * Verify a message received from anyone. Order matters: shape, then type, then signature,
 * then the body's schema — nothing is acted on before all four pass. Each failure has its code:
 * MALFORMED, WRONG_MESSAGE_TYPE, UNKNOWN_KEY, BAD_SIGNATURE.
 */
export async function verifyMessage<T extends MessageType>(
  message: unknown,
  expectedType: T,
  resolveKey: KeyResolver,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Signed<T>> {
  if (!isEnvelope(message)) throw new ObolError('MALFORMED', 'not a signed Obol message');
  if (message.type !== expectedType) {
    throw new ObolError('WRONG_MESSAGE_TYPE', `expected a ${expectedType} message, got ${String(message.type).slice(0, 40)}`);
  }
  const key = await resolveKey(message.kid);
  if (!key) throw new ObolError('UNKNOWN_KEY', `no trusted key with id ${message.kid.slice(0, 40)}`);
  let sig: Uint8Array<ArrayBuffer>;
  try {
    sig = fromBase64Url(message.sig);
  } catch {
    throw new ObolError('MALFORMED', 'signature is not base64url');
  }
  const ok = await crypto.subtle.verify(SIGN_ALG, key, sig, signingInput(1, message.type, message.kid, message.body));
  if (!ok) throw new ObolError('BAD_SIGNATURE', `the signature on this ${expectedType} does not verify`);
  checkMessageBody(expectedType, message.body);
  return message as Signed<T>;
}

interface Envelope {
  v: 1;
  type: string;
  kid: string;
  body: unknown;
  sig: string;
}

function isEnvelope(m: unknown): m is Envelope {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return false;
  const e = m as Record<string, unknown>;
  return (
    Object.keys(e).length === 5 &&
    e.v === 1 &&
    typeof e.type === 'string' &&
    typeof e.kid === 'string' &&
    e.kid.length > 0 &&
    e.kid.length <= 64 &&
    typeof e.sig === 'string' &&
    e.sig.length <= 200 &&
    typeof e.body === 'object' &&
    e.body !== null &&
    !Array.isArray(e.body)
  );
}
