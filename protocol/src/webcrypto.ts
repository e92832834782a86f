/**
 * The one injected WebCrypto handle. Browser and Node 20 both provide `globalThis.crypto`;
 * Node tests may pass `@peculiar/webcrypto`'s Crypto instead (the kept-tested fallback).
 */
export type WebCrypto = Crypto;

export function defaultCrypto(): WebCrypto {
  const c = (globalThis as { crypto?: WebCrypto }).crypto;
  if (!c?.subtle) throw new Error('WebCrypto is not available in this runtime');
  return c;
}

/** base64url without padding, for signatures and key material in JSON. */
export function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url');
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export const utf8 = {
  encode: (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s),
  decode: (b: Uint8Array): string => new TextDecoder().decode(b),
};

export async function sha256(data: Uint8Array<ArrayBuffer>, crypto: WebCrypto = defaultCrypto()): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

/** Random bytes as base64url: message ids, nonces, salts. */
export function randomId(bytes = 16, crypto: WebCrypto = defaultCrypto()): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}
