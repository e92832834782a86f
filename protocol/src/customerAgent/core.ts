import { ChallengeResponse, LoginResponse, OperatorInfo } from '../api.ts';
import type { Clock } from '../clock.ts';
import { type ErrorName, ObolError, type ObolErrorJson } from '../errors.ts';
import { parseSessionIdentity } from '../identity.ts';
import { type KeyResolver, type Signer, importPublicKey, keyIdOf, keySigner } from '../keys.ts';
import { checkSchema } from '../messages.ts';
import { type Cert, type OperatorMessageKey, certToBase64, describeCert, operatorMessageKey, parseCert } from '../pki.ts';
import { signMessage } from '../signed.ts';
import type { AccountRecord, LoginRecord, WalletStore } from '../walletStore.ts';
import { type Http, bearer } from '../http.ts';
import { type WebCrypto, defaultCrypto, randomId } from '../webcrypto.ts';

/** How the wallet sizes and times a deposit when it opens a transaction. */
export interface DepositPolicy {
  /**
   * Smallest deposit, in the customer's currency ("SEK:20.00"). Default: just the first price. A
   * function is asked at each new deposit (the shopper may change her choice at any time).
   */
  minimum?: string | (() => string | undefined);
  /** Session timeout asked for at initiation. Default 900 s. */
  timeoutSec?: number;
}

export interface CustomerAgentOptions {
  store: WalletStore;
  http: Http;
  clock: Clock;
  crypto?: WebCrypto;
  depositPolicy?: DepositPolicy;
  /**
   * The interbank roots (PKI zone 1) this wallet trusts, as base64url DER or PEM: shipped with the
   * wallet (the extension embeds them at build time) or configured (the CLI's --trusted-root).
   * Required: an operator whose certificate does not chain to one of them is refused at
   * registration with OPERATOR_NOT_TRUSTED. The root an operator presents is never taken on its
   * word: that would let any server that answers like an operator vouch for itself.
   */
  trustedRoots: readonly string[];
}

// An empty list is allowed and trusts nothing: a wallet built without roots still starts and says
// why at registration, rather than failing to start at all.
function trustedRootCerts(roots: readonly string[]): Cert[] {
  if (!Array.isArray(roots)) throw new ObolError('MALFORMED', 'trustedRoots must be a list of root certificates');
  return roots.map((r) => {
    const cert = parseCert(r);
    if (describeCert(cert).kind !== 'root') throw new ObolError('CERT_WRONG_KIND', 'a trusted root must be an interbank root certificate');
    return cert;
  });
}

/** A login is renewed this long before it expires, so a request never races the expiry. */
const LOGIN_MARGIN_MS = 5_000;

/** Errors that mean "no answer": the request may or may not have arrived; sending it again is safe. */
const LOST: ReadonlySet<ErrorName> = new Set(['UNAVAILABLE', 'TIMEOUT']);
/** Errors that mean "the answer is not known for sure": a stored message must be kept for a resend. */
const UNCERTAIN: ReadonlySet<ErrorName> = new Set(['UNAVAILABLE', 'TIMEOUT', 'INTERNAL']);

export function isLost(e: unknown): boolean {
  return e instanceof ObolError && LOST.has(e.name);
}

/** A definitive refusal: the peer answered and said no, so what was sent did not count. */
export function isRefusal(e: unknown): e is ObolError {
  return e instanceof ObolError && !UNCERTAIN.has(e.name);
}

export function isAuthError(e: unknown): boolean {
  return e instanceof ObolError && (e.name === 'SESSION_EXPIRED' || e.name === 'UNAUTHORIZED');
}

export function errorJson(e: unknown): ObolErrorJson {
  return e instanceof ObolError ? e.toJSON() : new ObolError('INTERNAL', e instanceof Error ? e.message : String(e)).toJSON();
}

/** A base URL as stored and compared: no trailing slash. */
export function baseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ObolError('MALFORMED', `not a URL: ${JSON.stringify(String(url).slice(0, 80))}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ObolError('MALFORMED', 'only http and https URLs are allowed');
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

/**
 * What every part of the agent shares: the injected platform (store, HTTP, clock, crypto), the
 * account and operator key, the login, and one lock so that two calls never interleave their
 * updates of the same transaction (e.g. two tabs buying from one merchant at once).
 */
export class AgentCore {
  readonly store: WalletStore;
  readonly http: Http;
  readonly clock: Clock;
  readonly crypto: WebCrypto;
  readonly policy: Required<Pick<DepositPolicy, 'timeoutSec'>> & Pick<DepositPolicy, 'minimum'>;
  /** Parsed once here, never per message. */
  readonly trustedRoots: readonly Cert[];
  /** Their wire forms (base64url DER), to recognise a stored account's root without parsing. */
  private readonly trustedRootWire: ReadonlySet<string>;

  private operatorKey: OperatorMessageKey | undefined;
  /** Keys of merchant certificates (step 7), imported once per certificate, not per message. */
  private readonly certKeys = new Map<string, { kid: string; key: CryptoKey }>();
  private loggingIn: Promise<LoginRecord> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: CustomerAgentOptions) {
    this.store = options.store;
    this.http = options.http;
    this.clock = options.clock;
    this.crypto = options.crypto ?? defaultCrypto();
    this.policy = { timeoutSec: options.depositPolicy?.timeoutSec ?? 900, minimum: options.depositPolicy?.minimum };
    this.trustedRoots = trustedRootCerts(options.trustedRoots);
    this.trustedRootWire = new Set(this.trustedRoots.map(certToBase64));
  }

  /** Is this root (base64url DER, as an account stores it) one the wallet trusts? */
  trustsRoot(rootCert: string): boolean {
    return this.trustedRootWire.has(rootCert);
  }

  now(): number {
    return this.clock.now();
  }

  newId(): string {
    return randomId(16, this.crypto);
  }

  /** Runs `fn` after every earlier exclusive call has finished (a FIFO lock). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async account(): Promise<AccountRecord> {
    const account = await this.store.getAccount();
    if (!account) throw new ObolError('NO_WALLET_ACCOUNT', 'this wallet has no account yet: register with an operator first');
    // An account made before the wallet knew its roots (or under a root since removed) is not used.
    if (!this.trustsRoot(account.rootCert)) {
      throw new ObolError('OPERATOR_NOT_TRUSTED', `operator ${account.operatorId} is under an interbank root this wallet no longer trusts`);
    }
    return account;
  }

  accountSigner(account: AccountRecord): Signer {
    return keySigner(account.kid, account.keys.privateKey, this.crypto);
  }

  /**
   * Our operator's message key: from its signing certificate, checked against the operator's
   * certificate and imported once (not per message). Never the operator's issuing key: a message
   * signed with that is refused (UNKNOWN_KEY). A missing or expired signing certificate is fetched
   * again from the operator's information and kept with the account.
   */
  async operatorResolver(account: AccountRecord): Promise<KeyResolver> {
    const now = this.now();
    const cached = this.operatorKey;
    if (!cached || cached.certB64 !== account.operatorSigningCert || cached.notAfter < now) {
      const operatorCert = parseCert(account.operatorCert);
      let key: OperatorMessageKey | undefined;
      if (account.operatorSigningCert) {
        key = await operatorMessageKey(account.operatorSigningCert, operatorCert, now, this.crypto).catch((e: unknown) => {
          if (e instanceof ObolError && e.name === 'CERT_EXPIRED') return undefined;
          throw e;
        });
      }
      if (!key) {
        const info = await this.http.get(this.operatorUrl(account, '/v1/operator'));
        checkSchema(OperatorInfo, info, 'operator information');
        key = await operatorMessageKey(info.signingCert, operatorCert, now, this.crypto);
        await this.store.putAccount({ ...account, operatorSigningCert: key.certB64 });
      }
      this.operatorKey = key;
    }
    const { kid, key } = this.operatorKey as OperatorMessageKey;
    return (k) => (k === kid ? key : undefined);
  }

  /** The key of a certificate (a merchant's, as our operator re-issued it), imported once. */
  async certResolver(certB64: string): Promise<KeyResolver> {
    let known = this.certKeys.get(certB64);
    if (!known) {
      const spki = describeCert(parseCert(certB64)).publicKeySpki;
      known = { kid: await keyIdOf(spki, this.crypto), key: await importPublicKey(spki, this.crypto) };
      if (this.certKeys.size >= 64) this.certKeys.clear();
      this.certKeys.set(certB64, known);
    }
    const { kid, key } = known;
    return (k) => (k === kid ? key : undefined);
  }

  operatorUrl(account: AccountRecord, path: string): string {
    return `${account.operatorUrl}${path}`;
  }

  /** A current login: the stored one while it lasts, otherwise a fresh one. */
  async ensureLogin(): Promise<LoginRecord> {
    const login = await this.store.getLogin();
    if (login && login.expiresAt - LOGIN_MARGIN_MS > this.now()) return login;
    return this.login();
  }

  /** Logs on by signing a fresh challenge with the long-term key. Concurrent calls share one logon. */
  login(): Promise<LoginRecord> {
    if (!this.loggingIn) {
      this.loggingIn = this.doLogin().finally(() => {
        this.loggingIn = undefined;
      });
    }
    return this.loggingIn;
  }

  private async doLogin(): Promise<LoginRecord> {
    const account = await this.account();
    const challenge = await this.http.post(this.operatorUrl(account, '/v1/login/challenge'), { customerId: account.customerId });
    checkSchema(ChallengeResponse, challenge, 'login challenge');
    const signed = await signMessage(
      'wallet.login',
      { msgId: this.newId(), customerId: account.customerId, challenge: challenge.challenge, time: this.now() },
      this.accountSigner(account),
    );
    const response = await this.http.post(this.operatorUrl(account, '/v1/login'), signed);
    checkSchema(LoginResponse, response, 'login response');
    if (parseSessionIdentity(response.sessionId).operatorId !== account.operatorId) {
      throw new ObolError('INVALID_IDENTITY', `the operator answered with a session of another operator (${response.sessionId})`);
    }
    const login: LoginRecord = { sessionId: response.sessionId, token: response.token, expiresAt: response.expiresAt };
    await this.store.putLogin(login);
    return login;
  }

  /**
   * Runs an authenticated call with the bearer token; if the operator says the session expired or
   * the token is not accepted, logs on again once and repeats the call.
   */
  async withLogin<T>(call: (login: LoginRecord, headers: Record<string, string>) => Promise<T>): Promise<T> {
    const login = await this.ensureLogin();
    try {
      return await call(login, bearer(login.token));
    } catch (e) {
      if (!isAuthError(e)) throw e;
      const fresh = await this.login();
      return call(fresh, bearer(fresh.token));
    }
  }

  /**
   * POST, and once more with the same body if no answer came back.
   *
   * The resend is immediate, on purpose, and the one place in the core that does not wait by
   * `backoffDelay`: the commonest "no answer" is a connection that died under the request (a
   * pooled socket the server had closed, a worker suspended mid-request), which a second try at
   * once gets through. A longer outage is not waited out here, with a shopper looking at a
   * spinner and under a clock that in tests and the simulator never moves by itself: the message
   * is already stored with its record (initiation, accept, record) and the stored copy is sent
   * again by `recover()` at the next start of the worker, or by the next purchase.
   */
  async postTwice(url: string, body: unknown, headers?: Record<string, string>): Promise<unknown> {
    try {
      return await this.http.post(url, body, headers);
    } catch (e) {
      if (!isLost(e)) throw e;
      return this.http.post(url, body, headers);
    }
  }
}
