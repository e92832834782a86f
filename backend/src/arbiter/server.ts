import { ArbiterPaths } from '@obol/protocol/api';
import { MAX_CIPHERTEXT_B64 } from '@obol/protocol/delivery';
import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandler } from '../http/errors.ts';
import { describeRoutes } from '../http/openapi.ts';
import { ArbiterRouteSchemas } from '@obol/protocol/routeSchemas';
import { type ServerLimits, obolServerOptions } from '../http/serverOptions.ts';
import { type TlsFiles, loadTls } from '../http/tls.ts';
import type { Arbiter } from './arbiter.ts';
import { formatReport } from './report.ts';

export interface ArbiterServer {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/**
 * The arbiter's HTTP endpoint: `POST /v1/judge` with an evidence bundle answers
 * `{ report, text }` (the report as data, and in plain words); bad evidence is a catalogue error.
 */
export async function startArbiterServer(
  arbiter: Arbiter,
  opts: { port?: number; host?: string; logger?: boolean; limits?: ServerLimits; tls?: TlsFiles } = {},
): Promise<ArbiterServer> {
  const tls = opts.tls ? await loadTls(opts.tls) : undefined;
  // The evidence carries the encrypted product: up to its largest size, plus certificates and messages.
  const app = Fastify(
    obolServerOptions({
      logger: opts.logger ?? false,
      bodyLimit: MAX_CIPHERTEXT_B64 + 256 * 1024,
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(tls ? { tls } : {}),
    }),
  );
  installErrorHandler(app);
  await describeRoutes(app, {
    title: 'Obol arbiter',
    description: 'Judges FIG 4 disputes from evidence bundles; asks the merchant’s operator for K1.',
    schemas: ArbiterRouteSchemas,
  });
  app.get(ArbiterPaths.openapi, async () => app.swagger());
  app.get(ArbiterPaths.health, async () => ({ ok: true, arbiter: arbiter.key.kid }));
  app.post(ArbiterPaths.judge, async (request) => {
    const report = await arbiter.judge(request.body);
    return { report, text: formatReport(report) };
  });
  await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 0);
  return { app, url: `${tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}`, close: () => app.close() };
}
