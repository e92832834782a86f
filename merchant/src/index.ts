/**
 * `@obol/merchant`: what a merchant installs to sell through Obol. Its public surface is this file
 * (its declarations are types/index.d.ts, checked against it by test/types.check.ts); the code is
 * the repository's merchant module (backend/src/merchant), bundled by scripts/build.mjs.
 */
export {
  type ObolFetchHandler,
  type ObolHandlerOptions,
  type ObolNodeHandler,
  type ObolShopOptions,
  obolFastify,
  obolFetchHandler,
  obolNodeHandler,
} from '../../backend/src/merchant/adapters.ts';
export { MODULE_PATH } from '../../backend/src/merchant/setup.ts';
