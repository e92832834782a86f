/**
 * The hand-kept declarations (types/index.d.ts, shipped as dist/index.d.ts) against the module's
 * real exports, checked by the typecheck (`npm run typecheck`): the same export names, each real
 * value assignable to its declaration, and each declared type the same as the real one both ways.
 * A change to the module's public surface that the declarations do not follow fails here.
 */
import type * as Declared from '../types/index.d.ts';
import * as real from '../src/index.ts';

/** `true` only when A and B are each assignable to the other. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export const sameValueNames: Same<keyof typeof Declared, keyof typeof real> = true;

export const fastify: typeof Declared.obolFastify = real.obolFastify;
export const nodeHandler: typeof Declared.obolNodeHandler = real.obolNodeHandler;
export const fetchHandler: typeof Declared.obolFetchHandler = real.obolFetchHandler;
export const modulePath: typeof Declared.MODULE_PATH = real.MODULE_PATH;

export const shopOptions: Same<Declared.ObolShopOptions, real.ObolShopOptions> = true;
export const handlerOptions: Same<Declared.ObolHandlerOptions, real.ObolHandlerOptions> = true;
export const nodeHandlerType: Same<Declared.ObolNodeHandler, real.ObolNodeHandler> = true;
export const fetchHandlerType: Same<Declared.ObolFetchHandler, real.ObolFetchHandler> = true;
