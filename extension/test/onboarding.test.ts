import { describe, expect, it } from 'vitest';
import { DEMO_OPERATORS, DEMO_SHOPS, shopsOf } from '../src/shared/messages.ts';

describe('the ready screen’s shops', () => {
  it('lists the demo shops for a demo operator, with or without a trailing slash', () => {
    expect(shopsOf(DEMO_OPERATORS, 'http://127.0.0.1:7101')).toEqual(DEMO_SHOPS);
    expect(shopsOf(DEMO_OPERATORS, 'http://127.0.0.1:7102/')).toEqual(DEMO_SHOPS);
    expect(DEMO_SHOPS.map((s) => s.url)).toEqual(['http://127.0.0.1:7201', 'http://127.0.0.1:7202']);
  });
  it('lists none for an operator the wallet does not list', () => {
    expect(shopsOf(DEMO_OPERATORS, 'https://bank.example')).toEqual([]);
    expect(shopsOf(DEMO_OPERATORS, undefined)).toEqual([]);
  });
});
