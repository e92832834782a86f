import { ObolError, type ErrorName } from '@obol/protocol/errors';
import { errorFromAnswer } from '@obol/protocol/http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sqlState } from '../store/db.ts';
import { installInputGuards } from './inputGuards.ts';

/**
 * How every Obol HTTP server (operator, merchant module, arbiter) answers an error: the status
 * for each error name (anything not listed is 400), and the body `{ error: { code, name,
 * message } }` with a code from the catalogue.
 */
const STATUS: Partial<Record<ErrorName, number>> = {
  UNAUTHORIZED: 401,
  BAD_SIGNATURE: 403,
  UNKNOWN_KEY: 403,
  CERT_EXPIRED: 403,
  CERT_NOT_YET_VALID: 403,
  CERT_UNTRUSTED: 403,
  CERT_WRONG_KIND: 403,
  MERCHANT_NOT_TRUSTED: 403,
  NO_WALLET_ACCOUNT: 404,
  UNKNOWN_SESSION: 404,
  UNKNOWN_TRANSACTION: 404,
  UNKNOWN_MERCHANT: 404,
  UNKNOWN_OPERATOR: 404,
  UNKNOWN_PRODUCT: 404,
  UNSUPPORTED_METHOD: 404,
  INSUFFICIENT_FUNDS: 402,
  DEPOSIT_EXHAUSTED: 402,
  AMOUNT_EXCEEDS_SIGNED: 409,
  REPLAYED: 409,
  OUT_OF_SEQUENCE: 409,
  PRODUCT_MISMATCH: 409,
  NO_ACCEPT: 409,
  CONFLICT: 409,
  SESSION_EXPIRED: 410,
  SESSION_CLOSED: 410,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  INTERNAL: 500,
};

export function httpStatusOf(error: ObolError): number {
  return STATUS[error.name] ?? 400;
}

/**
 * Our errors pass through with their status; Fastify's own 4xx (bad JSON, body too large, wrong
 * content type, schema) become MALFORMED with Fastify's status; anything else is a 500 INTERNAL
 * that says nothing about the inside (the log has it).
 */
export function toHttpError(err: FastifyError | ObolError | Error): { status: number; error: ObolError } {
  if (err instanceof ObolError) {
    const status = httpStatusOf(err);
    return status === 500 ? { status, error: internal() } : { status, error: err };
  }
  const f = err as FastifyError;
  if (f.validation) return { status: 400, error: new ObolError('MALFORMED', `request is malformed: ${f.message}`) };
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
    const fastifyOwn = typeof f.code === 'string' && f.code.startsWith('FST_');
    return { status: f.statusCode, error: new ObolError('MALFORMED', fastifyOwn ? f.message : 'the request could not be read') };
  }
  return { status: 500, error: internal() };
}

function internal(): ObolError {
  return new ObolError('INTERNAL', 'the server could not handle this request');
}

/**
 * Database refusals that a request's own contents caused, as a safety net behind the checks that
 * should have caught them first (so the request gets a 4xx with its code, and the log says which
 * check is missing): a duplicate of something unique, a number out of range, text the database
 * cannot store or parse.
 */
function fromDatabase(err: unknown): ObolError | undefined {
  switch (sqlState(err)) {
    case '23505':
      return new ObolError('CONFLICT', 'that already exists');
    case '22003':
      return new ObolError('INVALID_AMOUNT', 'a number is out of the range that can be stored');
    case '22P05':
    case '22021':
    case '22P02':
    case '22001':
      return new ObolError('MALFORMED', 'the request contains text that cannot be stored');
    default:
      return undefined;
  }
}

/**
 * The error and not-found handlers of an Obol server (or of one encapsulated plugin), and the
 * input guards at its edge (inputGuards.ts).
 */
export function installErrorHandler(app: FastifyInstance): void {
  installInputGuards(app);
  app.setErrorHandler((err: FastifyError | ObolError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const fromDb = fromDatabase(err);
    if (fromDb) request.log.warn({ err }, 'the database refused input a check should have refused first');
    const { status, error } = toHttpError(fromDb ?? err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    void reply.status(status).send({ error: error.toJSON() });
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new ObolError('UNSUPPORTED_METHOD', `no route ${request.method} ${request.url.split('?')[0]}`);
    void reply.status(404).send({ error: e.toJSON() });
  });
}

/**
 * 4xx answers that can change on a later try: a key or peer not known yet (the other side could
 * not load our certificate just then), a certificate not valid yet (clocks), a message another
 * copy of which is being handled (CONFLICT), too many requests just now (RATE_LIMITED).
 */
const MAY_CHANGE: ReadonlySet<ErrorName> = new Set(['UNKNOWN_KEY', 'UNKNOWN_OPERATOR', 'CERT_NOT_YET_VALID', 'CONFLICT', 'RATE_LIMITED']);

/**
 * A peer's answer that sending the same message again cannot change: a 4xx catalogue error. No
 * answer (UNAVAILABLE, TIMEOUT), a 5xx, or a 4xx that may change is not final: retry it.
 */
export function isFinalRefusal(e: unknown): e is ObolError {
  if (!(e instanceof ObolError)) return false;
  const status = httpStatusOf(e);
  return status >= 400 && status < 500 && !MAY_CHANGE.has(e.name);
}

/**
 * Turn a non-2xx answer received from a peer into an ObolError: the protocol's one mapping
 * (`errorFromAnswer`), shared by every client of the backend and the wallet.
 */
export function errorFromBody(status: number, body: unknown, url?: string): ObolError {
  return errorFromAnswer(status, body, url);
}
