import { ObolError, errorName } from '@obol/protocol/errors';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** HTTP status for each error family: the body always carries the catalogue code. */
export function httpStatusOf(e: ObolError): number {
  switch (e.name) {
    case 'UNAUTHORIZED':
    case 'BAD_SIGNATURE':
    case 'UNKNOWN_KEY':
      return 401;
    case 'CERT_EXPIRED':
    case 'CERT_NOT_YET_VALID':
    case 'CERT_UNTRUSTED':
    case 'CERT_WRONG_KIND':
    case 'MERCHANT_NOT_TRUSTED':
    case 'SESSION_EXPIRED':
      return 403;
    case 'UNKNOWN_SESSION':
    case 'UNKNOWN_TRANSACTION':
    case 'UNKNOWN_MERCHANT':
    case 'UNKNOWN_OPERATOR':
    case 'UNKNOWN_PRODUCT':
      return 404;
    case 'CONFLICT':
    case 'REPLAYED':
    case 'OUT_OF_SEQUENCE':
    case 'SESSION_CLOSED':
      return 409;
    case 'UNAVAILABLE':
      return 503;
    case 'TIMEOUT':
      return 504;
    case 'INTERNAL':
      return 500;
    default:
      return e.code >= 4000 && e.code < 5000 ? 403 : 400;
  }
}

/**
 * One error handler for every Obol HTTP server: catalogue errors go out as
 * `{ error: { code, name, message } }`; schema failures become MALFORMED; anything unexpected is
 * logged and answered INTERNAL without leaking internals.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ObolError | Error, request: FastifyRequest, reply: FastifyReply) => {
    let e: ObolError;
    if (err instanceof ObolError) e = err;
    else if ('validation' in err && err.validation) e = new ObolError('MALFORMED', `request is malformed: ${err.message}`);
    else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
      e = new ObolError('MALFORMED', err.message);
    } else {
      request.log.error({ err }, 'unexpected error');
      e = new ObolError('INTERNAL', 'internal error');
    }
    if (e.name === 'INTERNAL' && err !== e) request.log.error({ err }, 'internal error');
    void reply.status(httpStatusOf(e)).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: new ObolError('UNSUPPORTED_METHOD', `no route ${request.method} ${request.url}`).toJSON() });
  });
}

/** Turn an error body received from a peer into an ObolError (unknown codes become INTERNAL). */
export function errorFromBody(status: number, body: unknown): ObolError {
  if (body && typeof body === 'object' && 'error' in body) {
    const inner = (body as { error: unknown }).error;
    if (inner && typeof inner === 'object' && 'code' in inner && errorName(Number((inner as { code: unknown }).code))) {
      return ObolError.fromJSON(inner);
    }
  }
  return new ObolError(status >= 500 ? 'UNAVAILABLE' : 'INTERNAL', `peer answered HTTP ${status}`);
}
