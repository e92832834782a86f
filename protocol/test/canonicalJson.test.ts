import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, MAX_DEPTH } from '../src/canonicalJson.ts';
import { ObolError } from '../src/errors.ts';

function refusal(value: unknown): string {
  try {
    canonicalJson(value);
  } catch (e) {
    expect(e).toBeInstanceOf(ObolError);
    expect((e as ObolError).name).toBe('MALFORMED');
    return (e as Error).message;
  }
  throw new Error(`accepted: ${String(value)}`);
}

describe('canonicalJson: RFC 8785 examples', () => {
  it('§3.2.2: the main example (numbers, string escapes, literals, member order)', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('§3.2.3: members sorted by UTF-16 code units', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // (Read back through JSON.parse the order would be lost: JS lists integer-like names first.)
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis",' +
        '"€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('Appendix B: number serialisation', () => {
    const cases: Array<[number, string]> = [
      [0, '0'],
      [1, '1'],
      [5e-324, '5e-324'],
      [-5e-324, '-5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [-1.7976931348623157e308, '-1.7976931348623157e+308'],
      [9007199254740992, '9007199254740992'],
      [-9007199254740992, '-9007199254740992'],
      [295147905179352830000, '295147905179352830000'],
      [9.999999999999997e22, '9.999999999999997e+22'],
      [1e23, '1e+23'],
      [1e21, '1e+21'], // the RFC's 0x444b1ae4d6e2ef50
      [999999999999999900000, '999999999999999900000'], // 0x444b1ae4d6e2ef4f
      [999999999999999700000, '999999999999999700000'],
      [0.000001, '0.000001'],
      [1e-7, '1e-7'],
      [333333333.3333333, '333333333.3333333'],
    ];
    for (const [n, text] of cases) expect(canonicalJson([n])).toBe(`[${text}]`);
  });

  it('keeps what it has always produced for plain messages', () => {
    expect(canonicalJson({ b: 1, a: [3, { d: 1e2, c: 'x' }] })).toBe('{"a":[3,{"c":"x","d":100}],"b":1}');
    expect(canonicalJson({ a: 'é', b: '\u2028', n: null, e: {}, l: [] })).toBe('{"a":"é","b":"\u2028","e":{},"l":[],"n":null}');
    expect(canonicalJson(Object.assign(Object.create(null), { z: 1, y: true }))).toBe('{"y":true,"z":1}');
    expect(canonicalJson('x')).toBe('"x"');
  });
});

describe('canonicalJson refuses what is not JSON, saying where', () => {
  class Point {
    x = 1;
  }
  const sparse = [1, 2, 3];
  delete sparse[1]; // a hole, as `[1, , 3]` would make
  const extra = Object.assign([1, 2], { note: 'x' });
  const sym = { a: 1, [Symbol('s')]: 2 };
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  let deep: unknown = 1;
  for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];

  const cases: Array<[string, unknown, RegExp]> = [
    ['undefined member', { a: 1, b: undefined }, /undefined.*\$\.b/],
    ['undefined element', [1, undefined], /undefined.*\$\[1\]/],
    ['undefined at top', undefined, /undefined/],
    ['Date', { at: new Date(0) }, /Date.*\$\.at/],
    ['Map', { m: new Map([['k', 1]]) }, /Map/],
    ['Set', new Set([1]), /Set/],
    ['class instance', { p: new Point() }, /Point/],
    ['boxed string', { s: new String('x') }, /String/],
    ['Uint8Array', { b: new Uint8Array(2) }, /Uint8Array/],
    ['function', { f: () => 1 }, /function/],
    ['symbol value', { s: Symbol('x') }, /symbol/],
    ['symbol key', sym, /symbol-keyed/],
    ['bigint', { a: 1n }, /bigint/],
    ['NaN', { a: Number.NaN }, /NaN/],
    ['Infinity', [Number.POSITIVE_INFINITY], /Infinity/],
    ['-Infinity', [Number.NEGATIVE_INFINITY], /Infinity/],
    ['-0', { n: -0 }, /-0/],
    ['sparse array', sparse, /sparse/],
    ['array with extra member', extra, /extra/],
    ['lone high surrogate', { s: 'a\ud800' }, /lone surrogate/],
    ['lone low surrogate', ['\udc00b'], /lone surrogate/],
    ['lone surrogate in a name', { 'k\ud83d': 1 }, /lone surrogate/],
    ['cycle', cyclic, /cycle/],
    ['too deep', deep, /deeper/],
  ];
  for (const [name, value, why] of cases) {
    it(name, () => {
      expect(refusal(value)).toMatch(why);
    });
  }

  it('property: whatever it accepts is JSON that reads back to an equal value, and is a fixed point', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        let text: string;
        try {
          text = canonicalJson(v);
        } catch {
          // fc.jsonValue can produce -0, which is refused, never silently turned into 0.
          expect(JSON.stringify(v, (_k, x) => (Object.is(x, -0) ? '__neg0__' : x))).toContain('__neg0__');
          return;
        }
        expect(JSON.parse(text)).toEqual(v);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
    );
  });
});
