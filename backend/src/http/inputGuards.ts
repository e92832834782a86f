import type { Socket } from 'node:net';
import { ObolError } from '@obol/protocol/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * What no Obol request ever needs, refused at the edge before any handler sees it: NUL and other
 * control characters, and text that is not well-formed Unicode (a lone surrogate). They are what
 * reached PostgreSQL as "invalid byte sequence 0x00" (or a jsonb that would not parse) and came
 * back as 500s. Ids, keys, amounts, paths and headers allow no control character at all; bodies
 * allow tab and line breaks (a product description may have them). JSON nested deeper than
 * `MAX_DEPTH` is refused too: no message is, and walking it (canonical JSON, checks) could
 * exhaust the stack.
 */
export const MAX_DEPTH = 32;

/** Why `s` is refused, or undefined. `strict`: not even tab or line breaks. One pass, no regex. */
function badText(s: string, strict: boolean): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      if (!strict && (c === 0x09 || c === 0x0a || c === 0x0d)) continue;
      return 'a control character';
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return 'text that is not valid Unicode';
    }
    if (c >= 0xdc00 && c <= 0xdfff) return 'text that is not valid Unicode';
  }
  return undefined;
}

/** Walks a parsed value without recursion; throws MALFORMED at the first string (or key) refused. */
export function checkValue(value: unknown, where: string, strict: boolean): void {
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: value, path: where, depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      const why = badText(v, strict);
      if (why) throw new ObolError('MALFORMED', `${path} contains ${why}`);
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_DEPTH) throw new ObolError('MALFORMED', `${where} is nested more than ${MAX_DEPTH} levels deep`);
      if (Array.isArray(v)) {
        for (const [i, item] of v.entries()) stack.push({ v: item, path: `${path}[${i}]`, depth: depth + 1 });
      } else {
        for (const [key, item] of Object.entries(v)) {
          const why = badText(key, true);
          if (why) throw new ObolError('MALFORMED', `a member name in ${path} contains ${why}`);
          stack.push({ v: item, path: `${path}.${key}`, depth: depth + 1 });
        }
      }
    }
  }
}

export function checkRequest(request: FastifyRequest): void {
  checkValue(request.params, 'the path', true);
  checkValue(request.query, 'the query', true);
  for (const [name, value] of Object.entries(request.headers)) checkValue(value, `header ${name}`, true);
  checkValue(request.body, 'the body', false);
}

/** The guards of an Obol server (or of one encapsulated plugin, such as the merchant module). */
export function installInputGuards(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => checkRequest(request));
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a NUL in the request line or a
 * header, a broken Content-Length) and slow clients cut off: answered with a catalogue error body
 * like every other refusal, then the connection is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, error] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', new ObolError('TIMEOUT', 'the request took too long to arrive')]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', new ObolError('MALFORMED', 'the request headers are too large')]
        : [400, 'Bad Request', new ObolError('MALFORMED', 'the request could not be read as HTTP')];
  const body = JSON.stringify({ error: error.toJSON() });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
