import { createElement, Fragment, type VNode } from 'preact';

/**
 * What the bundle uses for `preact/jsx-runtime` (an alias in vite.config.ts): every JSX element
 * goes through Preact's own createElement, which the core needs anyway, instead of the runtime's
 * second vnode factory and its server-rendering helpers (≈ 0.3 KB the page never runs). The unit
 * tests and tsc keep Preact's runtime; both build the same vnodes.
 */
export function jsx(type: Parameters<typeof createElement>[0], props: Record<string, unknown>, key?: string | number): VNode {
  return createElement(type, key === undefined ? props : { ...props, key });
}

export { Fragment, jsx as jsxs };
