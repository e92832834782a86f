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

export const DEFAULTS: Required<BridgeOptions> = { discoveryMs: 600, payTimeoutMs: 120_000, timeoutMs: 10_000 };

/** Where discovery stands: still listening, a wallet answered, or the wait ran out without one. */
export type WalletStatus = { kind: 'looking' } | { kind: 'found'; wallet: WalletInfo } | { kind: 'none' };

const SHORT = /^[\x20-\x7e]{1,100}$/;

/** An announce's `detail.info`, checked before the widget keeps it (its icon is never shown). */
export function isWalletInfo(x: unknown): x is WalletInfo {
  if (!x || typeof x !== 'object') return false;
  const w = x as Record<string, unknown>;
  return (
    typeof w.uuid === 'string' &&
    SHORT.test(w.uuid) &&
    typeof w.name === 'string' &&
    w.name.length > 0 &&
    w.name.length <= 100 &&
    typeof w.rdns === 'string' &&
    SHORT.test(w.rdns) &&
    typeof w.icon === 'string' &&
    w.icon.startsWith('data:')
  );
}

/** A request id matching the bridge's `^[A-Za-z0-9_-]{1,64}$`; getRandomValues works on http pages too. */
export function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `w${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * The whole rule for answers, in one place: from this very window, on the wallet-to-page channel
 * at our version (protocol's `isBridgeResponse`), and answering an id we asked and still wait for.
 */
export function matchResponse(data: unknown, source: unknown, self: unknown, pending: { has(id: string): boolean }): BridgeResponse | null {
  return isBridgeResponse(data, source, self) && pending.has(data.id) ? data : null;
}

interface Pending {
  method: BridgeMethod;
  resolve(result: unknown): void;
  reject(error: ObolError): void;
  timer: ReturnType<typeof setTimeout>;
}

export class WalletBridge {
  #status: WalletStatus = { kind: 'looking' };
  readonly #pending = new Map<string, Pending>();
  readonly #listeners = new Set<(status: WalletStatus) => void>();
  readonly #waiting: Array<(w: WalletInfo | null) => void> = [];
  #discoveryTimer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  readonly #opts: Required<BridgeOptions>;
  readonly #win: BridgeWindow;

  constructor(win: BridgeWindow, opts: BridgeOptions = {}) {
    this.#win = win;
    this.#opts = { ...DEFAULTS, ...opts };
  }

  /** Listen for announces and answers, then ask any wallet present to announce itself. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#win.addEventListener(ANNOUNCE_EVENT, this.#onAnnounce);
    this.#win.addEventListener('message', this.#onMessage);
    this.#discoveryTimer = setTimeout(() => {
      if (this.#status.kind === 'looking') this.#setStatus({ kind: 'none' });
    }, this.#opts.discoveryMs);
    this.#win.dispatchEvent(new Event(REQUEST_EVENT));
  }

  stop(): void {
    this.#win.removeEventListener(ANNOUNCE_EVENT, this.#onAnnounce);
    this.#win.removeEventListener('message', this.#onMessage);
    clearTimeout(this.#discoveryTimer);
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new ObolError('DISCONNECTED', 'the page stopped talking to the wallet'));
      this.#pending.delete(id);
    }
  }

  get walletStatus(): WalletStatus {
    return this.#status;
  }

  /** The wallet, or null once discovery gave up (a wallet announcing later still switches it). */
  ready(): Promise<WalletInfo | null> {
    if (this.#status.kind === 'found') return Promise.resolve(this.#status.wallet);
    if (this.#status.kind === 'none') return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Called now with the current status and again on every change; returns the unsubscribe. */
  subscribe(listener: (status: WalletStatus) => void): () => void {
    this.#listeners.add(listener);
    listener(this.#status);
    return () => this.#listeners.delete(listener);
  }

  request<M extends BridgeMethod>(method: M, params: BridgeParams<M>): Promise<BridgeResults[M]> {
    const id = newRequestId();
    const timeoutMs = method === 'obol_pay' || method === 'obol_open' ? this.#opts.payTimeoutMs : this.#opts.timeoutMs;
    const message: BridgeRequest<M> = { channel: PAGE_TO_WALLET, version: BRIDGE_VERSION, id, method, params };
    return new Promise<BridgeResults[M]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ObolError('TIMEOUT', `the wallet did not answer ${method} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.#pending.set(id, { method, resolve: resolve as (r: unknown) => void, reject, timer });
      try {
        // Only this page's own origin may read the request; the wallet's content script is there.
        this.#win.postMessage(message, this.#win.location.origin);
      } catch {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new ObolError('UNAVAILABLE', 'this page cannot talk to a wallet (it has no origin)'));
      }
    });
  }

  readonly #onAnnounce = (event: Event): void => {
    if (this.#status.kind === 'found') return; // the first valid wallet stays
    const info = (event as CustomEvent<{ info?: unknown } | null>).detail?.info;
    if (!isWalletInfo(info)) return;
    const { uuid, name, icon, rdns } = info;
    this.#setStatus({ kind: 'found', wallet: Object.freeze({ uuid, name, icon, rdns }) });
  };

  readonly #onMessage = (event: Event): void => {
    const { data, source } = event as MessageEvent;
    const answer = matchResponse(data, source, this.#win, this.#pending);
    if (!answer) return;
    const p = this.#pending.get(answer.id);
    if (!p) return;
    this.#pending.delete(answer.id);
    clearTimeout(p.timer);
    if ('error' in answer) {
      p.reject(ObolError.fromJSON(answer.error));
    } else if (resultLooksRight(p.method, answer.result)) {
      p.resolve(answer.result);
    } else {
      p.reject(new ObolError('MALFORMED', `the wallet's answer to ${p.method} could not be read`));
    }
  };

  #setStatus(status: WalletStatus): void {
    this.#status = status;
    if (status.kind !== 'looking') {
      clearTimeout(this.#discoveryTimer);
      const wallet = status.kind === 'found' ? status.wallet : null;
      for (const resolve of this.#waiting.splice(0)) resolve(wallet);
    }
    for (const listener of [...this.#listeners]) listener(status);
  }
}

const isStr = (x: unknown): x is string => typeof x === 'string';
const TABLE_STATUSES = new Set(['valid', 'refreshed', 'unavailable', 'missing', 'expired', 'withheld']);

/** Enough of a shape check that the widget never trips over a wallet's answer. */
export function resultLooksRight(method: BridgeMethod, r: unknown): boolean {
  if (!r || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  switch (method) {
    case 'obol_getInfo':
      return isWalletInfo(o.wallet) && typeof o.hasAccount === 'boolean';
    case 'obol_quote':
      return (
        isStr(o.tableStatus) &&
        TABLE_STATUSES.has(o.tableStatus) &&
        Array.isArray(o.quotes) &&
        o.quotes.every((q) => q && typeof q === 'object' && isStr(q.price) && (q.converted === undefined || isStr(q.converted)))
      );
    case 'obol_purchased':
      return Array.isArray(o.productIds) && o.productIds.every(isStr);
    case 'obol_pay':
    case 'obol_open':
      return (
        isStr(o.transactionId) &&
        Number.isInteger(o.n) &&
        isStr(o.productId) &&
        isStr(o.price) &&
        isStr(o.content) &&
        isStr(o.contentType) &&
        isStr(o.contentHash) &&
        isStr(o.receiptId)
      );
    default:
      return false;
  }
}
