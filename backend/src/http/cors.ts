import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';

/**
 * CORS on the routes a browser calls (the wallet's service worker, the widget), on no other: not
 * on administration, not between operators, not from merchant to acquirer. Those answer a browser
 * nothing it could read, so a page an operator's staff happens to open cannot use their network
 * position to call them.
 *
 * Any origin may call the browser routes: every request is signed or carries a bearer token,
 * never a cookie, so CORS without credentials gives a page nothing it could not do from a server.
 *
 * Routes are named as they are registered, `"GET /v1/balance"`, relative to the plugin's prefix.
 * A preflight (`OPTIONS`) is answered for exactly those paths; another path's preflight finds no
 * route (404, no CORS header), so the browser never sends the request.
 */
export function browserCors(app: FastifyInstance, routes: readonly string[]): void {
  const byPath = new Map<string, Set<string>>();
  for (const route of routes) {
    const [method = '', path = ''] = route.split(' ');
    const full = `${app.prefix}${path}`;
    byPath.set(full, (byPath.get(full) ?? new Set()).add(method));
  }
  const allowOrigin: onRequestAsyncHookHandler = async (_request, reply) => {
    void reply.header('access-control-allow-origin', '*').header('access-control-expose-headers', 'retry-after');
  };
  app.addHook('onRoute', (route) => {
    if (typeof route.method !== 'string' || !byPath.get(route.url)?.has(route.method)) return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    // First, so a refusal (a 429 of the rate limits, a 401) is readable by the wallet too.
    route.onRequest = [allowOrigin, ...own];
  });
  for (const [full, methods] of byPath) {
    const path = full.slice(app.prefix.length);
    app.options(path, async (_request, reply) =>
      reply
        .code(204)
        .header('access-control-allow-origin', '*')
        .header('access-control-allow-methods', [...methods].join(', '))
        .header('access-control-allow-headers', 'content-type, authorization')
        .header('access-control-max-age', '600')
        .send(),
    );
  }
}
