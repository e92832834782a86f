import Type, { type TSchema } from 'typebox';
import Value from 'typebox/value';
import { type BridgeMethod, type BridgeRequest, isBridgeEnvelope } from './bridgeWire.ts';
import { PositiveMoney, ProductIdT } from './messages.ts';

export * from './bridgeWire.ts';

/**
 * The schemas of the public bridge methods' params, checked by the wallet's service worker
 * before it acts (the content script relays only well-formed envelopes: bridgeWire.ts).
 */
export const BridgeMethods = {
  obol_getInfo: Type.Object({}, { additionalProperties: false }),
  obol_quote: Type.Object({ prices: Type.Array(PositiveMoney, { minItems: 1, maxItems: 100 }) }, { additionalProperties: false }),
  obol_pay: Type.Object(
    {
      merchant: Type.String({ pattern: '^https?://', maxLength: 500 }),
      productId: ProductIdT,
      price: PositiveMoney,
      description: Type.Optional(Type.String({ maxLength: 300 })),
    },
    { additionalProperties: false },
  ),
  obol_purchased: Type.Object(
    { merchant: Type.String({ pattern: '^https?://', maxLength: 500 }), productIds: Type.Array(ProductIdT, { minItems: 1, maxItems: 100 }) },
    { additionalProperties: false },
  ),
  obol_open: Type.Object({ merchant: Type.String({ pattern: '^https?://', maxLength: 500 }), productId: ProductIdT }, { additionalProperties: false }),
} as const satisfies Record<BridgeMethod, TSchema>;

/** The service worker's check: the content script's envelope rule, and params that match their method's schema. */
export function isBridgeRequest(data: unknown, source: unknown, self: unknown): data is BridgeRequest {
  return isBridgeEnvelope(data, source, self) && Value.Check(BridgeMethods[data.method], data.params);
}
