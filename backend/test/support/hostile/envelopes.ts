import fc from 'fast-check';
import type { Signer } from '@obol/protocol/keys';
import { type RouteBody, signAnything } from './routeBodies.ts';

/**
 * Signed messages of the right shape that must not verify: a signature changed by one
 * character, another message's signature, a key nobody knows, a key the server knows but does
 * not trust for this route, the body changed after signing, the type swapped, the version,
 * members added or missing.
 */
type Envelope = { v: unknown; type: unknown; kid: unknown; body: unknown; sig: unknown; [extra: string]: unknown };

export interface EnvelopeCase {
  kind: string;
  build(route: RouteBody, valid: unknown, other: Signer): Promise<unknown>;
}

function flip(sig: string, at: number): string {
  const i = at % sig.length;
  return `${sig.slice(0, i)}${sig[i] === 'A' ? 'B' : 'A'}${sig.slice(i + 1)}`;
}

const signedBy = async (route: RouteBody, body: unknown, signer?: Signer): Promise<Envelope> =>
  signAnything(route.signed!.type, body, signer ?? route.signed!.signer);

export const ENVELOPE_CASES: ReadonlyArray<EnvelopeCase> = [
  { kind: 'signature changed', build: async (r, b) => {
    const m = await signedBy(r, b);
    return { ...m, sig: flip(String(m.sig), 7) };
  } },
  { kind: 'signature of another body', build: async (r, b) => {
    const m = await signedBy(r, b);
    const other = await signedBy(r, { ...(b as object), time: 1 });
    return { ...m, sig: other.sig };
  } },
  { kind: 'signature not base64url', build: async (r, b) => ({ ...(await signedBy(r, b)), sig: '!!!!' }) },
  { kind: 'signature empty', build: async (r, b) => ({ ...(await signedBy(r, b)), sig: '' }) },
  { kind: 'signature too long', build: async (r, b) => ({ ...(await signedBy(r, b)), sig: 'A'.repeat(10_000) }) },
  { kind: 'unknown kid', build: async (r, b) => ({ ...(await signedBy(r, b)), kid: 'A'.repeat(43) }) },
  { kind: 'kid too long', build: async (r, b) => ({ ...(await signedBy(r, b)), kid: 'A'.repeat(65) }) },
  { kind: 'kid prototype name', build: async (r, b) => ({ ...(await signedBy(r, b)), kid: '__proto__' }) },
  { kind: 'signed by a key not trusted here', build: async (r, b, other) => signedBy(r, b, other) },
  { kind: 'body changed after signing', build: async (r, b) => {
    const m = await signedBy(r, b);
    return { ...m, body: { ...(m.body as object), time: 0 } };
  } },
  { kind: 'type swapped', build: async (r, b) => ({ ...(await signedBy(r, b)), type: r.signed!.type === 'wallet.order' ? 'wallet.accept' : 'wallet.order' }) },
  { kind: 'version 2', build: async (r, b) => ({ ...(await signedBy(r, b)), v: 2 }) },
  { kind: 'version as string', build: async (r, b) => ({ ...(await signedBy(r, b)), v: '1' }) },
  { kind: 'extra member', build: async (r, b) => ({ ...(await signedBy(r, b)), admin: true }) },
  { kind: 'no signature', build: async (r, b) => {
    const { sig: _sig, ...rest } = await signedBy(r, b);
    return rest;
  } },
  { kind: 'body an array', build: async (r, b) => ({ ...(await signedBy(r, b)), body: [b] }) },
  { kind: 'body null', build: async (r, b) => ({ ...(await signedBy(r, b)), body: null }) },
];

export const envelopeCase: fc.Arbitrary<EnvelopeCase> = fc.constantFrom(...ENVELOPE_CASES);
