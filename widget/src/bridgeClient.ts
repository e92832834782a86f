import {
  ANNOUNCE_EVENT,
  BRIDGE_VERSION,
  type BridgeMethod,
  type BridgeParams,
  type BridgeRequest,
  type BridgeResponse,
  type BridgeResults,
  isBridgeResponse,
  PAGE_TO_WALLET,
  REQUEST_EVENT,
  type WalletInfo,
} from '@obol/protocol/bridgeWire';
import { ObolError } from '@obol/protocol/errors';

/**
 * The page side of the bridge (protocol/src/bridge.ts): finds the wallet EIP-6963 style, sends
 * requests by `window.postMessage` and matches the answers by id. It holds no secrets and decides
 * nothing about money: a payment counts only when the merchant holds the wallet's signed accept.
 */

/** What the bridge needs of a window; a real `Window`, or a stand-in in unit tests. */
export interface BridgeWindow extends EventTarget {
  readonly location: { readonly origin: string };
  postMessage(message: unknown, targetOrigin: string): void;
}

export interface BridgeOptions {
  /** How long to wait for an announce before saying there is no wallet. A late announce still counts. */
  discoveryMs?: number;
  /** `obol_pay` may wait for the shopper to confirm in the wallet's window (and `obol_open` for a large delivery). */
  payTimeoutMs?: number;
  /** Every other method. */
  timeoutMs?: number;
}

/** Where discovery stands: still listening, a wallet answered, or the wait ran out without one. */
export type WalletStatus = { kind: 'looking' } | { kind: 'found'; wallet: WalletInfo } | { kind: 'none' };

const isStr = (x: unknown): x is string => typeof x === 'string';
/** Printable ASCII, 1 to 100 characters (a uuid, an rdns). */
const isShort = (x: unknown): x is string => isStr(x) && /^[\x20-\x7e]{1,100}$/.test(x);

/** An announce's `detail.info`, checked before the widget keeps it (its icon is never shown). */
export function isWalletInfo(x: unknown): x is WalletInfo {
  const w = (x ?? {}) as Record<string, unknown>;
  // `[\s\S]` is any UTF-16 unit, so the name is 1 to 100 of them, as `length` counts.
  return isShort(w.uuid) && isShort(w.rdns) && isStr(w.name) && /^[\s\S]{1,100}$/.test(w.name) && isStr(w.icon) && w.icon.startsWith('data:');
}

/** A request id matching the bridge's `^[A-Za-z0-9_-]{1,64}$`; getRandomValues works on http pages too. */
export function newRequestId(): string {
  return `w${Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => (b + 256).toString(16).slice(1)).join('')}`;
}

/**
 * The whole rule for answers, in one place: from this very window, on the wallet-to-page channel
 * at our version (protocol's `isBridgeResponse`), and answering an id we asked and still wait for.
 */
export function matchResponse(data: unknown, source: unknown, self: unknown, pending: { has(id: string): boolean }): BridgeResponse | null {
  return isBridgeResponse(data, source, self) && pending.has(data.id) ? data : null;
}

interface Pending {
  method: WidgetMethod;
  resolve(result: unknown): void;
  reject(error: ObolError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The methods the widget calls (never `obol_getInfo`: the announce tells it what it needs). */
export type WidgetMethod = Exclude<BridgeMethod, 'obol_getInfo'>;

export class WalletBridge {
  #status: WalletStatus = { kind: 'looking' };
  readonly #pending = new Map<string, Pending>();
  readonly #listeners = new Set<(status: WalletStatus) => void>();
  #discoveryTimer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  readonly #opts: Required<BridgeOptions>;
  readonly #win: BridgeWindow;

  constructor(win: BridgeWindow, opts: BridgeOptions = {}) {
    this.#win = win;
    this.#opts = { discoveryMs: 600, payTimeoutMs: 120_000, timeoutMs: 10_000, ...opts };
  }

  /** Listen for announces and answers, then ask any wallet present to announce itself. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#win.addEventListener(ANNOUNCE_EVENT, this.#onAnnounce);
    this.#win.addEventListener('message', this.#onMessage);
    this.#discoveryTimer = setTimeout(() => this.#setStatus({ kind: 'none' }), this.#opts.discoveryMs);
    this.#win.dispatchEvent(new Event(REQUEST_EVENT));
  }

  /** The wallet, or null once discovery gave up (a wallet announcing later still switches it). */
  ready(): Promise<WalletInfo | null> {
    return new Promise((resolve) => {
      const answer = (s: WalletStatus): void => {
        if (s.kind === 'looking') return;
        resolve(s.kind === 'found' ? s.wallet : null);
        this.#listeners.delete(answer);
      };
      this.subscribe(answer);
    });
  }

  /** Called now with the current status and again on every change; returns the unsubscribe. */
  subscribe(listener: (status: WalletStatus) => void): () => void {
    this.#listeners.add(listener);
    listener(this.#status);
    return () => this.#listeners.delete(listener);
  }

  request<M extends WidgetMethod>(method: M, params: BridgeParams<M>): Promise<BridgeResults[M]> {
    const id = newRequestId();
    const timeoutMs = method === 'obol_pay' || method === 'obol_open' ? this.#opts.payTimeoutMs : this.#opts.timeoutMs;
    const message: BridgeRequest<M> = { channel: PAGE_TO_WALLET, version: BRIDGE_VERSION, id, method, params };
    return new Promise<BridgeResults[M]>((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(id, new ObolError('TIMEOUT', `the wallet did not answer ${method} within ${timeoutMs / 1000} s`)), timeoutMs);
      this.#pending.set(id, { method, resolve: resolve as (r: unknown) => void, reject, timer });
      try {
        // Only this page's own origin may read the request; the wallet's content script is there.
        this.#win.postMessage(message, this.#win.location.origin);
      } catch {
        this.#settle(id, new ObolError('UNAVAILABLE', 'this page cannot talk to a wallet (it has no origin)'));
      }
    });
  }

  /** Ends one request: its answer, or the error it fails with. */
  #settle(id: string, error: ObolError | null, result?: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (!error && !resultLooksRight(p.method, result)) error = new ObolError('MALFORMED', `the wallet's answer to ${p.method} could not be read`);
    if (error) p.reject(error);
    else p.resolve(result);
  }

  readonly #onAnnounce = (event: Event): void => {
    const info = (event as CustomEvent<{ info?: unknown } | null>).detail?.info;
    // The first valid wallet stays.
    if (this.#status.kind === 'found' || !isWalletInfo(info)) return;
    const { uuid, name, icon, rdns } = info;
    this.#setStatus({ kind: 'found', wallet: Object.freeze({ uuid, name, icon, rdns }) });
  };

  readonly #onMessage = (event: Event): void => {
    const { data, source } = event as MessageEvent;
    const answer = matchResponse(data, source, this.#win, this.#pending);
    if (answer) 'error' in answer ? this.#settle(answer.id, ObolError.fromJSON(answer.error)) : this.#settle(answer.id, null, answer.result);
  };

  #setStatus(status: WalletStatus): void {
    if (this.#status.kind === 'found') return; // a wallet, once found, stays
    clearTimeout(this.#discoveryTimer);
    this.#status = status;
    for (const listener of [...this.#listeners]) listener(status);
  }
}

const TABLE_STATUSES: unknown[] = ['valid', 'refreshed', 'unavailable', 'missing', 'expired', 'withheld'];
/** The string fields of `obol_pay`'s (and `obol_open`'s) result; `n` is an integer. */
const PAID_FIELDS = ['transactionId', 'productId', 'price', 'content', 'contentType', 'contentHash', 'receiptId'];

/** Enough of a shape check that the widget never trips over a wallet's answer. */
export function resultLooksRight(method: WidgetMethod, r: unknown): boolean {
  if (!r || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  switch (method) {
    case 'obol_quote':
      return (
        TABLE_STATUSES.includes(o.tableStatus) &&
        Array.isArray(o.quotes) &&
        o.quotes.every((q) => isStr(q?.price) && (q.converted === undefined || isStr(q.converted)))
      );
    case 'obol_purchased':
      return Array.isArray(o.productIds) && o.productIds.every(isStr);
    default: // obol_pay, obol_open
      return Number.isInteger(o.n) && PAID_FIELDS.every((k) => isStr(o[k]));
  }
}
