import fc from 'fast-check';

/**
 * The hostile set every route gets whether or not it declares a schema: bodies of the wrong
 * content type, broken or truncated JSON, JSON of the wrong top-level type, deep nesting, prototype
 * names, large bodies; and path parameters that are not ids.
 */
export interface RawPayload {
  kind: string;
  contentType: string | undefined;
  body: string | Buffer;
}

function deep(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

export const GENERIC_PAYLOADS: ReadonlyArray<RawPayload> = [
  { kind: 'empty json', contentType: 'application/json', body: '' },
  { kind: 'truncated json', contentType: 'application/json', body: '{"v": 1, "type": "wallet.' },
  { kind: 'not json', contentType: 'application/json', body: 'hello' },
  { kind: 'json null', contentType: 'application/json', body: 'null' },
  { kind: 'json number', contentType: 'application/json', body: '1e999' },
  { kind: 'json string', contentType: 'application/json', body: '"x"' },
  { kind: 'json array', contentType: 'application/json', body: '[{"v":1}]' },
  { kind: 'json true', contentType: 'application/json', body: 'true' },
  { kind: 'empty object', contentType: 'application/json', body: '{}' },
  { kind: 'duplicate keys', contentType: 'application/json', body: '{"v":1,"v":2,"amount":"SEK:1","amount":"SEK:-1"}' },
  { kind: '__proto__', contentType: 'application/json', body: '{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}' },
  { kind: 'nested 40', contentType: 'application/json', body: deep(40) },
  { kind: 'nested 10000', contentType: 'application/json', body: deep(10_000) },
  { kind: 'wide object', contentType: 'application/json', body: JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]))) },
  { kind: 'long string', contentType: 'application/json', body: JSON.stringify({ x: 'A'.repeat(500_000) }) },
  { kind: 'big number', contentType: 'application/json', body: `{"amount": ${'9'.repeat(5_000)}}` },
  { kind: 'escaped NUL', contentType: 'application/json', body: '{"customerId":"\\u0000"}' },
  { kind: 'lone surrogate', contentType: 'application/json', body: '{"customerId":"\\ud800"}' },
  { kind: 'invalid UTF-8', contentType: 'application/json', body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80, 0xc0, 0x80, 0x22, 0x7d]) },
  { kind: 'UTF-16 JSON', contentType: 'application/json', body: Buffer.from('{"a":"b"}', 'utf16le') },
  { kind: 'BOM', contentType: 'application/json', body: '\ufeff{}' },
  { kind: 'text/plain', contentType: 'text/plain', body: '{"customerId":"x"}' },
  { kind: 'form', contentType: 'application/x-www-form-urlencoded', body: 'customerId=x&amount=SEK%3A1' },
  { kind: 'multipart', contentType: 'multipart/form-data; boundary=x', body: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--' },
  { kind: 'xml', contentType: 'application/xml', body: '<a>1</a>' },
  { kind: 'charset latin1', contentType: 'application/json; charset=latin1', body: '{}' },
  { kind: 'odd json type', contentType: 'application/json-patch+json', body: '[]' },
  { kind: 'no content type', contentType: undefined, body: '{}' },
  { kind: 'bad content type', contentType: ';;;/', body: '{}' },
];

export const genericPayload: fc.Arbitrary<RawPayload> = fc.constantFrom(...GENERIC_PAYLOADS);

/** Path parameters, percent-encoded as they travel: prototype names, NUL, broken escapes, long, dots. */
export const hostileParam: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', '%00', 'a%00b', '%ZZ', '%', '%2e%2e', '%C0%80', '%ED%A0%80', '%FF', '..', 'A'.repeat(3_000), '%20', 't-AAAAAAAAAAAAAAAAAAAAAA'),
  fc.string({ maxLength: 30 }).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, 'x')) || 'x'),
);
