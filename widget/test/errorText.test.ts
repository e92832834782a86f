import { ErrorCodes, ObolError } from '@obol/protocol/errors';
import { describe, expect, it } from 'vitest';
import { errorSentence, toErrorJson } from '../src/errorText.ts';

describe('errorSentence: one readable sentence per code', () => {
  /** An error as the widget holds it: the wire form, its name found from its code. */
  const byCode = (code: number) => errorSentence(toErrorJson({ code, message: '' }));
  it('says what the shopper can do about the common wallet errors', () => {
    expect(byCode(4001)).toBe('You declined the payment.');
    expect(byCode(4302)).toBe('Set up your Obol wallet first.');
    expect(byCode(4301)).toMatch(/budget/);
    expect(byCode(3000)).toMatch(/Not enough money/);
    expect(byCode(6001)).toMatch(/No answer from your Obol wallet/);
  });

  it('has a sentence for every code of the catalogue, never a raw code name', () => {
    for (const [name, code] of Object.entries(ErrorCodes)) {
      const s = errorSentence({ code, name: name as keyof typeof ErrorCodes });
      expect(s).toMatch(/^[A-Z].*\.$/);
      expect(s).not.toContain(name);
    }
    expect(errorSentence({ code: ErrorCodes.INTERNAL, name: 'INTERNAL' })).toBe('The payment did not go through. Please try again.');
  });
});

describe('toErrorJson', () => {
  it('keeps our own errors and rebuilds wire errors by code', () => {
    expect(toErrorJson(new ObolError('OVER_BUDGET', 'budget for shop.example: 0.50 EUR'))).toEqual({
      code: 4301,
      name: 'OVER_BUDGET',
      message: 'budget for shop.example: 0.50 EUR',
    });
    expect(toErrorJson({ code: 4001, message: 'no' })).toEqual({ code: 4001, name: 'USER_REJECTED', message: 'no' });
  });

  it('turns anything unknown into INTERNAL, without trusting its text', () => {
    expect(toErrorJson({ code: 12345, message: 'Click here to win' })).toMatchObject({ code: 6002, name: 'INTERNAL' });
    expect(toErrorJson(new TypeError('x is undefined'))).toMatchObject({ code: 6002, name: 'INTERNAL' });
    expect(toErrorJson('boom')).toMatchObject({ code: 6002 });
  });
});
