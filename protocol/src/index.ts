// The public face of @obol/protocol. Subpath imports (`@obol/protocol/money`) work as well.
export * from './errors.ts';
export * from './clock.ts';
export * from './webcrypto.ts';
export * from './canonicalJson.ts';
export * from './identity.ts';
export * from './keys.ts';
export * from './messages.ts';
export * from './signed.ts';
export * from './money.ts';
export * from './exchangeTable.ts';
export * from './purchaseList.ts';
export * from './api.ts';
export * from './pki.ts';
export * from './clearingRule.ts';
