import canonicalize from 'canonicalize';
import { ObolError } from './errors.ts';

/**
 * RFC 8785 (JCS) canonical JSON: the bytes that get signed. Sorting keys and fixing number
 * forms means the signer and the verifier hash the same bytes however each side built the
 * object. `undefined` members are dropped as JSON.stringify does; bigint is refused (money
 * travels as strings), so nothing is silently rounded.
 */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (e) {
    throw new ObolError('MALFORMED', `cannot canonicalise message: ${(e as Error).message}`);
  }
  if (text === undefined) throw new ObolError('MALFORMED', 'cannot canonicalise an undefined message');
  return text;
}
