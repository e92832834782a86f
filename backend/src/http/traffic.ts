import type { FastifyInstance } from 'fastify';

/**
 * A tap on what our servers answer, for conformance checks (the OpenAPI test validates every
 * request and answer of a full session against `/openapi.json`) and for debugging. Nothing is
 * recorded unless someone observes: with no observer the hook only checks an empty set.
 */
export interface Exchange {
  method: string;
  /** The URL as requested: path and query. */
  url: string;
  /** The route's path template as declared (e.g. /v1/transactions/:transactionId), if one matched. */
  route: string | undefined;
  requestHeaders: Record<string, string | string[] | undefined>;
  /** The parsed request body (JSON), if any. */
  requestBody: unknown;
  status: number;
  contentType: string | undefined;
  /** The answer as sent (text), when it is text. */
  responseText: string | undefined;
}

export type TrafficObserver = (exchange: Exchange) => void;

const observers = new Set<TrafficObserver>();

/** Observe every exchange of every server in this process until the returned function is called. */
export function observeTraffic(observer: TrafficObserver): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

export function installTrafficTap(app: FastifyInstance): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    if (observers.size > 0) {
      const type = reply.getHeader('content-type');
      const exchange: Exchange = {
        method: request.method,
        url: request.url,
        route: request.routeOptions.url,
        requestHeaders: { ...request.headers },
        requestBody: request.body,
        status: reply.statusCode,
        contentType: typeof type === 'string' ? type : undefined,
        responseText: typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined,
      };
      for (const observe of observers) observe(exchange);
    }
    done(null, payload);
  });
}
