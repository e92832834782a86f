import { canonicalJson } from './canonicalJson.ts';
import { type WebCrypto, defaultCrypto, fromBase64Url, sha256, toBase64Url, utf8 } from './webcrypto.ts';

/** One accepted purchase as both wallet and merchant record it. */
export interface PurchaseLine {
  n: number;
  productId: string;
  price: string;
}

/**
 * The salted hash of a transaction's purchase list (FIG 3 records): SHA-256 over the salt and the
 * canonical JSON of the lines in order. Wallet and merchant compute it alike; the operators
 * compare the two without learning the list.
 */
export async function purchasesHash(
  listSalt: string,
  lines: readonly PurchaseLine[],
  crypto: WebCrypto = defaultCrypto(),
): Promise<string> {
  const salt = fromBase64Url(listSalt);
  const list = utf8.encode(canonicalJson(lines.map(({ n, productId, price }) => ({ n, productId, price }))));
  const buf = new Uint8Array(salt.length + list.length);
  buf.set(salt, 0);
  buf.set(list, salt.length);
  return toBase64Url(await sha256(buf, crypto));
}
