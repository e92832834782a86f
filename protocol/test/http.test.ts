import { describe, expect, it } from 'vitest';
import { ObolError } from '../src/errors.ts';
import { fetchHttp } from '../src/http.ts';

async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    if (e instanceof ObolError) return e.name;
    throw e;
  }
}

describe('fetchHttp', () => {
  const respond = (status: number, body: string | null) => async () => new Response(body, { status, headers: { 'content-type': 'application/json' } });

  it('sends JSON with the given headers and returns the JSON answer', async () => {
    const seen: { url: string; init?: RequestInit }[] = [];
    const http = fetchHttp(async (url, init) => {
      seen.push({ url, init });
      return new Response(JSON.stringify({ ok: true }), { status: 200 });
    });
    expect(await http.post('https://bank.example/v1/x', { a: 1 }, { authorization: 'Bearer t' })).toEqual({ ok: true });
    expect(seen[0]!.init).toMatchObject({ method: 'POST', body: '{"a":1}' });
    expect(seen[0]!.init!.headers).toMatchObject({ 'content-type': 'application/json', authorization: 'Bearer t' });
    expect(await fetchHttp(respond(204, null)).get('https://bank.example/v1/y')).toBeUndefined();
  });

  it('turns error bodies into ObolErrors, lost connections into UNAVAILABLE', async () => {
    const body = JSON.stringify({ error: { code: 3001, name: 'DEPOSIT_EXHAUSTED', message: 'spent' } });
    expect(await errorName(fetchHttp(respond(409, body)).post('https://shop.example/order', {}))).toBe('DEPOSIT_EXHAUSTED');
    expect(await errorName(fetchHttp(respond(503, 'busy')).get('https://shop.example/merchant'))).toBe('UNAVAILABLE');
    expect(await errorName(fetchHttp(respond(401, '')).get('https://bank.example/v1/balance'))).toBe('UNAUTHORIZED');
    expect(await errorName(fetchHttp(respond(500, 'oops')).get('https://bank.example/v1/balance'))).toBe('INTERNAL');
    expect(await errorName(fetchHttp(respond(200, 'not json')).get('https://bank.example/v1/balance'))).toBe('MALFORMED');
    const refused = fetchHttp(async () => {
      throw new TypeError('fetch failed');
    });
    expect(await errorName(refused.get('https://bank.example/v1/operator'))).toBe('UNAVAILABLE');
  });
});
