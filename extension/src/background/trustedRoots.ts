/**
 * The interbank roots (PKI zone 1) this build of the wallet trusts, as base64url DER. They are
 * embedded at build time by scripts/build.ts from PEM files: OBOL_TRUSTED_ROOTS (comma-separated
 * paths; a file may be a bundle), by default the demo world's root under .data/demo/keys/root. An
 * operator whose certificate does not chain to one of them is refused at registration
 * (OPERATOR_NOT_TRUSTED); the root an operator presents is never taken on its word.
 */
declare const __OBOL_TRUSTED_ROOTS__: readonly string[] | undefined;

// `typeof` keeps unit tests (which run the sources without the build's define) working: no roots.
export const BUILT_IN_TRUSTED_ROOTS: readonly string[] = typeof __OBOL_TRUSTED_ROOTS__ === 'undefined' ? [] : __OBOL_TRUSTED_ROOTS__;
