import type { Server } from 'node:http';
import type { FastifyHttpOptions, FastifyReply } from 'fastify';
import { ObolError } from '@obol/protocol/errors';
import { clientErrorHandler } from './inputGuards.ts';
import type { TlsPem } from './tls.ts';

/**
 * How long a client may take. Without limits Node reads a request body sent one byte every few
 * seconds for minutes, holding a connection (and its memory) for each such client.
 */
export interface ServerLimits {
  /** The whole request, headers and body, must arrive within this. Default 30 s. */
  requestTimeoutMs?: number;
  /** A connection that sends nothing for this long is closed. Default 60 s. */
  idleTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. Default 10 s. */
  keepAliveTimeoutMs?: number;
}

export const DEFAULT_LIMITS: Required<ServerLimits> = { requestTimeoutMs: 30_000, idleTimeoutMs: 60_000, keepAliveTimeoutMs: 10_000 };

/**
 * The Fastify options every Obol HTTP server starts with (operator, the shop serving the merchant
 * module, arbiter): logger, body limit, time limits on slow clients, catalogue error bodies
 * for requests Node's parser refuses, and TLS when given a certificate (tls.ts). Node checks running
 * requests against `requestTimeout` only every `connectionsCheckingInterval` (30 s by default),
 * so that interval is shortened to a fraction of the timeout.
 */
/** Logging on or off, or every line (pino JSON) at `level` and above written to `stream` (tests read it). */
export type ServerLogger = boolean | { level: string; stream: { write(line: string): void } };

/**
 * Credentials never reach a log line, whoever logs a request or its headers: the default request
 * serializer logs no headers today, but a handler logging `req` (or a changed serializer) would
 * log bearer tokens (logon, admin), a wallet's signed session read, or cookies.
 */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
];

function withRedaction(logger: ServerLogger): false | { level: string; redact: { paths: string[]; censor: string }; stream?: { write(line: string): void } } {
  if (logger === false) return false;
  const redact = { paths: REDACTED_LOG_PATHS, censor: '[redacted]' };
  return logger === true ? { level: 'info', redact } : { ...logger, redact };
}

export function obolServerOptions(o: { logger?: ServerLogger; bodyLimit?: number; limits?: ServerLimits; tls?: TlsPem } = {}): FastifyHttpOptions<Server> {
  const limits = { ...DEFAULT_LIMITS, ...o.limits };
  const checkEvery = Math.max(50, Math.min(1_000, Math.floor(limits.requestTimeoutMs / 4)));
  const http = {
    connectionsCheckingInterval: checkEvery,
    // Node refuses headers slower than the whole request may be.
    headersTimeout: Math.min(60_000, limits.requestTimeoutMs),
  };
  const options: FastifyHttpOptions<Server> = {
    logger: withRedaction(o.logger ?? false),
    ...(o.bodyLimit !== undefined ? { bodyLimit: o.bodyLimit } : {}),
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    clientErrorHandler,
    // Errors Fastify meets before routing (a path that is not valid percent-encoding) bypass the
    // error handlers; they get a catalogue body here.
    frameworkErrors: (error, _request, reply) => {
      void (reply as unknown as FastifyReply).status(400).send({ error: new ObolError('MALFORMED', `the request could not be read: ${error.message}`).toJSON() });
    },
    http,
  };
  if (!o.tls) return options;
  // The same server with TLS under it. Fastify hands `http` only to a plain server, so its
  // options go into `https` (Node's https server takes them too). Typed as the plain server's
  // options: the instance, its hooks and handlers are the same, only the socket is a TLS one.
  const { http: _plain, ...rest } = options;
  return { ...rest, https: { ...http, cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' } } as unknown as FastifyHttpOptions<Server>;
}
