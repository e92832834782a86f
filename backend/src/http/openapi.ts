import swagger from '@fastify/swagger';
import type { RouteSchema } from '@obol/protocol/routeSchemas';
import type { FastifyInstance } from 'fastify';
import { installTrafficTap } from './traffic.ts';

/**
 * Issue 15 item 6: every route declares what it takes and answers (protocol/src/routeSchemas.ts),
 * and the server's `/openapi.json` (OpenAPI 3.1) describes the bodies, not just the paths.
 *
 * The schemas describe; they do not check or shape. The handlers check their input as before
 * (checkSchema on compiled TypeBox, verifyMessage), with the catalogue's errors; so Fastify
 * validates nothing with these schemas (no second check on every purchase) and serializes answers
 * with plain JSON.stringify (Fastify's schema serializer would silently drop any field a schema
 * forgot). A test checks real traffic against the document instead (openApiTraffic.test.ts).
 */
export async function describeRoutes(
  app: FastifyInstance,
  opts: { title: string; description: string; schemas: Readonly<Record<string, RouteSchema>> },
): Promise<void> {
  installTrafficTap(app);
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // Before any route of this context is added: each gets its schema as it is declared.
  app.addHook('onRoute', (route) => {
    if (typeof route.method !== 'string' || route.schema) return;
    // CORS preflights (cors.ts) are the browser's business, not operations of the API.
    if (route.method === 'OPTIONS') {
      route.schema = { hide: true };
      return;
    }
    const path = route.prefix && route.url.startsWith(route.prefix) ? route.url.slice(route.prefix.length) || '/' : route.url;
    const described = opts.schemas[`${route.method} ${path}`];
    if (described) route.schema = { ...described };
  });
  // A host application that documents itself already collects our routes (with their schemas).
  if (app.hasDecorator('swagger')) return;
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: opts.title, version: '1', description: opts.description },
    },
  });
}
