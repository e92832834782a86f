import fc from 'fast-check';
import type { TSchema } from 'typebox';

/**
 * Hostile values derived from a route's JSON Schema (the TypeBox schemas of protocol/src/api.ts
 * and messages.ts are plain JSON Schema objects): for every field of a request body, the value of
 * the wrong type, the field missing, a huge string, deep nesting, the boundary just outside each
 * limit, and — for money strings ("EUR:0.05") — the amounts that pass the wire pattern but not
 * the rules behind it: overflowing 64 bits, more fractional digits than the currency has,
 * negative, an unknown or the wrong currency, zero. Each generated case is one or a few such
 * mutations of a valid body, so every check behind the first is reached too.
 */

/** The part of JSON Schema the protocol's schemas use. */
export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  patternProperties?: Record<string, JsonSchema>;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  const?: unknown;
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
}

export function asJsonSchema(schema: TSchema): JsonSchema {
  return schema as unknown as JsonSchema;
}

export type FieldPath = ReadonlyArray<string | number>;

/** One field of a body, with its schema and whether the schema requires it. */
export interface Field {
  path: FieldPath;
  schema: JsonSchema;
  required: boolean;
}

/** Every field reachable from `schema`, objects and their members, arrays' first items, union branches that are objects. */
export function fieldsOf(schema: JsonSchema, path: FieldPath = [], required = true, depth = 0): Field[] {
  const out: Field[] = path.length === 0 ? [] : [{ path, schema, required }];
  if (depth > 6) return out;
  if (schema.properties) {
    for (const [name, member] of Object.entries(schema.properties)) {
      out.push(...fieldsOf(member, [...path, name], schema.required?.includes(name) ?? false, depth + 1));
    }
  }
  if (schema.items) out.push(...fieldsOf(schema.items, [...path, 0], true, depth + 1));
  for (const branch of schema.anyOf ?? []) {
    if (branch.properties) out.push(...fieldsOf({ ...branch }, path, required, depth + 1).filter((f) => f.path.length > path.length));
  }
  return out;
}

/** Marks a field to delete rather than set. */
export const REMOVE: unique symbol = Symbol('remove');
export type MutationValue = unknown | typeof REMOVE;

export interface Mutation {
  path: FieldPath;
  /** What kind of hostility, for the failure message and the tally. */
  kind: string;
  value: MutationValue;
}

const MONEY_PATTERN = /\[A-Z\]\{3\}:/;
export function isMoney(schema: JsonSchema): boolean {
  return schema.type === 'string' && typeof schema.pattern === 'string' && MONEY_PATTERN.test(schema.pattern);
}

function jsonTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const WRONG_TYPED: ReadonlyArray<unknown> = ['x', '', 0, 1, -1, 1.5, true, false, null, [], [1, 'a'], {}, { a: 1 }];

/** An array nested `depth` levels, or an object; past the guard's 32 levels and far past them. */
function nested(depth: number, asObject: boolean): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = asObject ? { a: v } : [v];
  return v;
}

/**
 * Amounts of `currencies` that a money field must refuse: the shape is right (mostly), the value
 * is not. `own` is the currency the field is in when the body is valid: the other currencies
 * (`foreign`) are a mismatch; a valid amount in `own` is never generated.
 */
export function hostileAmounts(own: string, foreign: string): string[] {
  return [
    // overflowing 64-bit minor units, at and past the limit
    `${own}:999999999999999999.9999`,
    `${own}:999999999999999999`,
    `${own}:92233720368547758.08`,
    `${own}:184467440737095516.16`,
    // more fractional digits than the currency has (SEK and EUR have 2)
    `${own}:0.001`,
    `${own}:0.0001`,
    `${own}:1.005`,
    // negative, and negative zero
    `${own}:-1.00`,
    `${own}:-0.01`,
    `${own}:-0`,
    // unknown currencies, lowercase, a currency that is real but not this one
    'XXX:1.00',
    'ZZZ:0.05',
    'sek:1.00',
    `${foreign}:1.00`,
    `${foreign}:0.0001`,
    // no currency, wrong separators, exponents, signs, spaces, numbers
    '1.00',
    `${own}1.00`,
    `${own}:1,00`,
    `${own}:1e3`,
    `${own}:+1.00`,
    ` ${own}:1.00`,
    `${own}:1.00 `,
    `${own}:.5`,
    `${own}:1.`,
    `${own}:0x10`,
    `${own}:${'9'.repeat(40)}`,
    `${own}:Infinity`,
    `${own}:NaN`,
    // zero: no deposit, price, funding or limit of nothing
    `${own}:0`,
    `${own}:0.00`,
  ];
}

/** Strings that break a pattern by one character, and the lengths just outside the limits. */
function boundaryStrings(schema: JsonSchema): string[] {
  const out: string[] = ['', ' ', 'a b', '../../etc/passwd', '<script>', "'; DROP TABLE x; --", '\u00e9', '\ud83d\ude00', '%00', '$' + '{x}'];
  if (schema.minLength !== undefined && schema.minLength > 0) out.push('a'.repeat(schema.minLength - 1));
  if (schema.maxLength !== undefined) out.push('a'.repeat(schema.maxLength + 1), 'A'.repeat(schema.maxLength * 2 + 7));
  // A pattern's {m,n} repetition: one short and one long.
  const rep = schema.pattern ? /\{(\d+),(\d+)\}/.exec(schema.pattern) : null;
  if (rep) out.push('A'.repeat(Math.max(0, Number(rep[1]) - 1)), 'A'.repeat(Number(rep[2]) + 1));
  return out;
}

const HUGE_LENGTHS = [10_000, 70_000, 900_000];

function boundaryNumbers(schema: JsonSchema): unknown[] {
  const out: unknown[] = [-1, 0.5, -0.5, 1e-9, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, -(2 ** 63), 1e308, -1e308, '1', '0x10', '1e3'];
  if (schema.minimum !== undefined) out.push(schema.minimum - 1, schema.minimum - 0.5);
  if (schema.maximum !== undefined) out.push(schema.maximum + 1, schema.maximum + 0.5);
  return out;
}

export interface MoneyContext {
  /** The currency a money field at `path` is in when the body is valid. */
  currencyOf(path: FieldPath, valid: unknown): string;
  /** A known currency that is not `own` (a mismatch). */
  foreign(own: string): string;
}

/** Every hostile value for one field, as a fast-check choice. */
export function hostileValueFor(field: Field, valid: unknown, money: MoneyContext): fc.Arbitrary<Omit<Mutation, 'path'>> {
  const s = field.schema;
  const options: Array<fc.Arbitrary<Omit<Mutation, 'path'>>> = [];
  const constant = (kind: string, values: ReadonlyArray<unknown>) => {
    if (values.length > 0) options.push(fc.constantFrom(...values).map((value) => ({ kind, value })));
  };
  constant('missing', [REMOVE]);
  constant(
    'wrong type',
    WRONG_TYPED.filter((v) => {
      const t = jsonTypeOf(v);
      if (s.type === 'number') return t !== 'number' && t !== 'integer';
      return s.type === undefined ? true : t !== s.type;
    }),
  );
  options.push(fc.constantFrom(...HUGE_LENGTHS).map((n) => ({ kind: 'huge string', value: 'A'.repeat(n) })));
  options.push(fc.constantFrom(33, 200, 1_000).chain((d) => fc.boolean().map((o) => ({ kind: `nested ${d}`, value: nested(d, o) }))));
  if (s.type === 'string' && !isMoney(s)) constant('boundary string', boundaryStrings(s));
  if (s.type === 'integer' || s.type === 'number') constant('boundary number', boundaryNumbers(s));
  if (s.const !== undefined) constant('other constant', [typeof s.const === 'string' ? `${s.const}x` : 2, 0, 'wallet.order', 'am.ack']);
  if (s.anyOf?.every((b) => b.const !== undefined)) constant('unknown choice', ['other', 'WALLET', '']);
  if (s.type === 'array') {
    const item = Array.isArray(valid) && valid.length > 0 ? valid[0] : 'x';
    constant('array size', [[], Array.from({ length: (s.maxItems ?? 100) + 1 }, () => item), Array.from({ length: 5_000 }, () => item)]);
  }
  if (s.type === 'object') constant('extra member', [{ ...(valid as object), unexpected: 1 }, { ...(valid as object), constructor: { prototype: { admin: true } } }]);
  if (isMoney(s)) {
    const own = money.currencyOf(field.path, valid);
    const amounts = hostileAmounts(own, money.foreign(own));
    // Money gets the most weight: it is what can move.
    options.push(fc.constantFrom(...amounts).map((value) => ({ kind: 'amount', value })));
    options.push(fc.constantFrom(...amounts).map((value) => ({ kind: 'amount', value })));
  }
  return fc.oneof(...options);
}

/** A copy of `body` with `mutations` applied (a path through a missing or non-object part makes one there). */
export function applyMutations(body: unknown, mutations: ReadonlyArray<Mutation>): unknown {
  const copy = structuredClone(body) as Record<string | number, unknown>;
  for (const m of mutations) {
    let at: Record<string | number, unknown> = copy;
    for (const key of m.path.slice(0, -1)) {
      const next = at[key];
      if (next === null || typeof next !== 'object') at[key] = {};
      at = at[key] as Record<string | number, unknown>;
    }
    const last = m.path[m.path.length - 1]!;
    if (m.value === REMOVE) delete at[last];
    else at[last] = m.value;
  }
  return copy;
}

export function valueAt(body: unknown, path: FieldPath): unknown {
  let at: unknown = body;
  for (const key of path) at = at !== null && typeof at === 'object' ? (at as Record<string | number, unknown>)[key] : undefined;
  return at;
}

/** One to three mutations of `valid`'s fields, each drawn from the field's hostile values. */
export function mutationsOf(schema: JsonSchema, valid: unknown, money: MoneyContext): fc.Arbitrary<Mutation[]> {
  const fields = fieldsOf(schema);
  if (fields.length === 0) return fc.constant([]);
  const one = fc
    .constantFrom(...fields)
    .chain((field) => hostileValueFor(field, valueAt(valid, field.path), money).map((m) => shown({ path: field.path, ...m })));
  return fc.array(one, { minLength: 1, maxLength: 3 });
}

/** fast-check prints a failing case by walking it: a value nested 5,000 deep would overflow its stack. */
function shown(m: Mutation): Mutation {
  return Object.assign(m, { [fc.toStringMethod]: () => describeMutations([m]) });
}

export function describeMutations(mutations: ReadonlyArray<Mutation>): string {
  return mutations
    .map((m) => {
      const v = m.value === REMOVE ? '(removed)' : m.kind.startsWith('nested') ? '…' : (JSON.stringify(m.value) ?? String(m.value));
      return `${m.path.join('.')} ← ${m.kind}: ${v.length > 80 ? `${v.slice(0, 60)}…(${v.length} chars)` : v}`;
    })
    .join('; ');
}
