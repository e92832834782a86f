/**
 * The closed catalogue of error codes. Every error that crosses a boundary — HTTP response,
 * page bridge, CLI — carries one of these codes and a sentence a person can read. Codes that
 * mean the same as EIP-1193's (4001 user rejected, 4100 unauthorised, 4200 unsupported,
 * 4900 disconnected) reuse those numbers so web developers recognise them.
 */
export const ErrorCodes = {
  // wallet and page bridge (EIP-1193 numbers where the meaning matches)
  USER_REJECTED: 4001,
  UNAUTHORIZED: 4100,
  UNSUPPORTED_METHOD: 4200,
  DISCONNECTED: 4900,
  OVER_BUDGET: 4301,
  NO_WALLET_ACCOUNT: 4302,
  PROMPT_PENDING: 4303,
  SITE_BLOCKED: 4304,
  /** A purchase the shopper did not confirm in the wallet's window needs a fresh gesture on the page. */
  USER_ACTIVATION_REQUIRED: 4305,
  /** A document with an opaque origin (sandboxed frame, data:, blob:) is no site: it may not pay. */
  OPAQUE_ORIGIN: 4306,
  /** The site asked for too many confirmation windows in a short time. */
  TOO_MANY_PROMPTS: 4307,
  // malformed input
  MALFORMED: 1000,
  WRONG_MESSAGE_TYPE: 1001,
  UNKNOWN_CURRENCY: 1002,
  CURRENCY_MISMATCH: 1003,
  INVALID_AMOUNT: 1004,
  INVALID_IDENTITY: 1005,
  // signatures and certificates
  BAD_SIGNATURE: 2000,
  UNKNOWN_KEY: 2001,
  CERT_EXPIRED: 2002,
  CERT_NOT_YET_VALID: 2003,
  CERT_UNTRUSTED: 2004,
  CERT_WRONG_KIND: 2005,
  MERCHANT_NOT_TRUSTED: 2006,
  OPERATOR_NOT_TRUSTED: 2007,
  // money
  INSUFFICIENT_FUNDS: 3000,
  DEPOSIT_EXHAUSTED: 3001,
  AMOUNT_EXCEEDS_SIGNED: 3002,
  EXCHANGE_TABLE_MISSING: 3003,
  EXCHANGE_TABLE_EXPIRED: 3004,
  RATE_UNAVAILABLE: 3005,
  // protocol state
  REPLAYED: 5000,
  OUT_OF_SEQUENCE: 5001,
  SESSION_EXPIRED: 5002,
  SESSION_CLOSED: 5003,
  UNKNOWN_SESSION: 5004,
  UNKNOWN_TRANSACTION: 5005,
  UNKNOWN_MERCHANT: 5006,
  UNKNOWN_OPERATOR: 5007,
  UNKNOWN_PRODUCT: 5008,
  PRODUCT_MISMATCH: 5009,
  NO_ACCEPT: 5010,
  CONFLICT: 5011,
  // operational
  UNAVAILABLE: 6000,
  TIMEOUT: 6001,
  INTERNAL: 6002,
  /** Too many requests from one client: try again after the `retry-after` seconds. */
  RATE_LIMITED: 6003,
} as const;

export type ErrorName = keyof typeof ErrorCodes;
export type ErrorCode = (typeof ErrorCodes)[ErrorName];

const namesByCode = new Map<number, ErrorName>(
  Object.entries(ErrorCodes).map(([name, code]) => [code, name as ErrorName]),
);

/** The wire form of an error: what the page, the widget and HTTP clients see. */
export interface ObolErrorJson {
  code: ErrorCode;
  name: ErrorName;
  message: string;
}

export class ObolError extends Error {
  readonly code: ErrorCode;
  override readonly name: ErrorName;
  constructor(name: ErrorName, message: string) {
    super(message);
    this.name = name;
    this.code = ErrorCodes[name];
  }

  toJSON(): ObolErrorJson {
    return { code: this.code, name: this.name, message: this.message };
  }

  /** Rebuild an error received over the wire; unknown codes become INTERNAL, never trusted text. */
  static fromJSON(json: unknown): ObolError {
    if (json && typeof json === 'object' && 'code' in json) {
      const code = (json as { code: unknown }).code;
      const message = (json as { message?: unknown }).message;
      const name = typeof code === 'number' ? namesByCode.get(code) : undefined;
      if (name) return new ObolError(name, typeof message === 'string' ? message : name);
    }
    return new ObolError('INTERNAL', 'an unrecognised error was received');
  }
}

export function isObolError(e: unknown): e is ObolError {
  return e instanceof ObolError;
}

/** Name of a code, for logs and tests. */
export function errorName(code: number): ErrorName | undefined {
  return namesByCode.get(code);
}
