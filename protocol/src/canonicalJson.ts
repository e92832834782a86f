import { ObolError } from './errors.ts';

/**
 * RFC 8785 (JCS) canonical JSON: the bytes that get signed. Sorting keys and fixing number
 * forms means the signer and the verifier hash the same bytes however each side built the
 * object.
 *
 * Only values that are JSON are accepted; anything JSON.stringify would quietly change is refused
 * with MALFORMED and the path where it sits, so nothing can be signed in a lossy form (the signer
 * would sign bytes that do not say what its object said):
 * - `undefined` (a member or an array element), functions and symbols: JSON.stringify drops them
 *   or writes null. Callers omit optional fields instead of setting them to undefined.
 * - bigint (money travels as strings), NaN and ±Infinity (written as null), and -0: RFC 8785
 *   writes it as 0, so the value signed would not be the value held.
 * - strings and member names with a lone surrogate: not Unicode, so not I-JSON (RFC 8785 §3.2.2.2
 *   requires them to be refused).
 * - objects whose prototype is neither Object.prototype nor null: a Date would go through toJSON, a
 *   Map or a class instance would lose its contents or its kind. Symbol-keyed members, sparse
 *   arrays and arrays with extra members: the part JSON cannot carry would be dropped.
 * - cycles, and nesting deeper than MAX_DEPTH (a hostile message must not exhaust the stack).
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, out, '$', 0, new Set());
  return out.join('');
}

/** Far deeper than any Obol message; bounds the recursion on hostile input. */
export const MAX_DEPTH = 64;

// With the `u` flag a surrogate pair is one code point, so only a lone surrogate matches.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function refuse(path: string, why: string): never {
  throw new ObolError('MALFORMED', `cannot canonicalise message: ${why} at ${path}`);
}

function writeString(s: string, out: string[], path: string): void {
  if (LONE_SURROGATE.test(s)) refuse(path, 'a string with a lone surrogate (not Unicode)');
  // JSON.stringify's string escaping is exactly RFC 8785's (§3.2.2.2).
  out.push(JSON.stringify(s));
}

function write(value: unknown, out: string[], path: string, depth: number, open: Set<object>): void {
  switch (typeof value) {
    case 'string':
      writeString(value, out, path);
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value)) refuse(path, `${value} (not a JSON number)`);
      if (Object.is(value, -0)) refuse(path, '-0 (JSON writes it as 0)');
      // ECMAScript's Number-to-String is RFC 8785's number form (§3.2.2.3).
      out.push(String(value));
      return;
    case 'object':
      break;
    case 'undefined':
      refuse(path, 'undefined (omit the member instead)');
      break; // unreachable: refuse throws
    case 'bigint':
      refuse(path, 'a bigint (send it as a string)');
      break;
    default:
      refuse(path, `a ${typeof value}`);
  }
  if (value === null) {
    out.push('null');
    return;
  }
  if (depth >= MAX_DEPTH) refuse(path, `nesting deeper than ${MAX_DEPTH}`);
  if (open.has(value)) refuse(path, 'a cycle');
  if (Object.getOwnPropertySymbols(value).length > 0) refuse(path, 'a symbol-keyed member');
  open.add(value);
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) refuse(path, 'an array subclass');
    if (Object.keys(value).length !== value.length) refuse(path, 'a sparse array or an array with extra members');
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      write(value[i], out, `${path}[${i}]`, depth + 1, open);
    }
    out.push(']');
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (proto as { constructor?: { name?: unknown } }).constructor?.name;
      refuse(path, `a ${typeof kind === 'string' && kind ? kind : 'non-plain object'} (only plain objects are JSON)`);
    }
    const record = value as Record<string, unknown>;
    // RFC 8785 §3.2.3: members sorted by their names' UTF-16 code units, which is what sort() compares.
    const keys = Object.keys(record).sort();
    out.push('{');
    keys.forEach((k, i) => {
      if (i > 0) out.push(',');
      const at = `${path}.${k.slice(0, 40)}`;
      writeString(k, out, at);
      out.push(':');
      write(record[k], out, at, depth + 1, open);
    });
    out.push('}');
  }
  open.delete(value);
}
