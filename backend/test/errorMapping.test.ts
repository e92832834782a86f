/**
 * One mapping from a non-2xx answer to the error catalogue (issue 12 item 3): the operators' peer
 * client (undici), the merchant module's client to its operator, and the wallet's fetch client
 * read the same answer as the same error — a 500 without a catalogue body is INTERNAL for all of
 * them (it was UNAVAILABLE in one and INTERNAL in another).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ObolError } from '@obol/protocol/errors';
import { fetchHttp } from '@obol/protocol/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undiciHttp } from '../src/http/client.ts';
import { undiciPost } from '../src/merchant/http.ts';

let server: Server;
let base: string;

beforeAll(async () => {
  // GET/POST /<status>[/catalogue]: answers that status, with a catalogue error body or plain text.
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const [, status, kind] = (req.url ?? '').split('/');
      res.statusCode = Number(status);
      if (kind === 'catalogue') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: new ObolError('DEPOSIT_EXHAUSTED', 'used up').toJSON() }));
      } else res.end('<html>proxy error</html>');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return e instanceof ObolError ? e.name : `not an ObolError: ${String(e)}`;
  }
}

describe('one mapping from an answer to the error catalogue', () => {
  const merchant = undiciPost();
  afterAll(() => merchant.close());
  const clients = {
    'operator peer client': (url: string) => undiciHttp.post(url, {}),
    'merchant module client': (url: string) => merchant.post(url, {}),
    'wallet fetch client': (url: string) => fetchHttp().post(url, {}),
  };

  for (const [name, post] of Object.entries(clients)) {
    it(`${name}: the catalogue error of the body, else by status`, async () => {
      expect(await errorOf(post(`${base}/409/catalogue`))).toBe('DEPOSIT_EXHAUSTED');
      expect(await errorOf(post(`${base}/500`))).toBe('INTERNAL');
      expect(await errorOf(post(`${base}/502`))).toBe('UNAVAILABLE');
      expect(await errorOf(post(`${base}/503`))).toBe('UNAVAILABLE');
      expect(await errorOf(post(`${base}/504`))).toBe('UNAVAILABLE');
      expect(await errorOf(post(`${base}/408`))).toBe('TIMEOUT');
      expect(await errorOf(post(`${base}/401`))).toBe('UNAUTHORIZED');
      expect(await errorOf(post(`${base}/404`))).toBe('INTERNAL');
    });

    it(`${name}: a peer that cannot be reached is UNAVAILABLE, never a raw network error`, async () => {
      // Port 9 (discard) on loopback: nothing listens there, the connection is refused.
      expect(await errorOf(post('http://127.0.0.1:9/v1/anything'))).toBe('UNAVAILABLE');
    });
  }
});
