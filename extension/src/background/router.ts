import { type BridgeMethod, type BridgeRequest, isBridgeRequest } from '@obol/protocol/bridge';
import { ObolError, type ObolErrorJson } from '@obol/protocol/errors';
import type { Wallet } from '@obol/protocol/customerAgent/wallet';
import { type PageCaller, SHOPPER_OPERATIONS, type WalletOperation } from '@obol/protocol/customerAgent/walletApi';
import { BRIDGE_MESSAGE, type Reply, WALLET_MESSAGE } from '../shared/messages.ts';

/** The parts of `runtime.MessageSender` the router reads (Chromium also sets `origin` and `documentId`). */
export interface Sender {
  id?: string;
  url?: string;
  origin?: string;
  documentId?: string;
  tab?: { id?: number };
  frameId?: number;
}

/** `opaque`: our content script in a document whose origin is opaque — no site, refused with OPAQUE_ORIGIN. */
export type Caller = { kind: 'extension' } | ({ kind: 'page' } & PageCaller) | { kind: 'opaque' };

/**
 * Who is calling, from what the browser says about the sender (never from the message):
 * - our own extension pages: sent by this extension from a URL under the extension's base URL;
 * - a web page: our content script (same extension id) in a tab, with the page's origin from
 *   `sender.origin` (or the sender's URL where the browser gives no `sender.origin`). Cross-origin
 *   iframes are their own origin.
 * - an opaque origin (`sender.origin` "null": a sandboxed frame, a data: or blob: document) is no
 *   site, whatever URL it was loaded from: never charged as the site its URL names.
 * Anything else (another extension, a page without a tab) is nobody.
 */
export function callerOf(sender: Sender, self: { id: string; baseUrl: string }): Caller | undefined {
  if (sender.id !== self.id) return undefined;
  const url = sender.url ?? '';
  if (url.startsWith(self.baseUrl)) return { kind: 'extension' };
  if (!sender.tab) return undefined;
  if (sender.origin === 'null') return { kind: 'opaque' };
  const origin = sender.origin ?? originOf(url);
  if (origin === 'null' && /^(data|blob|about):/.test(url)) return { kind: 'opaque' };
  if (!origin || !/^https?:\/\//.test(origin)) return undefined;
  const caller: Caller = { kind: 'page', origin };
  const documentId = sender.documentId ?? (sender.tab.id !== undefined ? `tab:${sender.tab.id}:${sender.frameId ?? 0}:${url}` : undefined);
  if (documentId) caller.documentId = documentId;
  return caller;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** The shape check of the bridge, reused: the content script already checked source and window. */
const SAME = {};
function isPublicRequest(request: unknown): request is BridgeRequest {
  return isBridgeRequest(request, SAME, SAME);
}

const KEY = /^[A-Za-z0-9_-]{8,64}$/;

function errorReply(e: unknown): { error: ObolErrorJson } {
  if (e instanceof ObolError) return { error: e.toJSON() };
  return { error: new ObolError('INTERNAL', 'the wallet failed unexpectedly').toJSON() };
}

/**
 * The service worker's one entry for messages. It holds no wallet logic: it names the caller (from
 * the browser's sender) and dispatches to the wallet core's one entry point. Two routers, kept
 * apart: pages reach only the public methods (obol_getInfo, obol_quote, obol_pay, obol_purchased,
 * obol_open) through the content script; the shopper's operations answer only to the extension's
 * own pages. Every answer is `{ result }` or `{ error }`.
 */
export async function route(wallet: Wallet, message: unknown, caller: Caller | undefined): Promise<Reply<unknown> | undefined> {
  if (!caller || !message || typeof message !== 'object') return undefined;
  const m = message as Record<string, unknown>;
  try {
    if (m.type === BRIDGE_MESSAGE) {
      if (caller.kind === 'opaque') throw new ObolError('OPAQUE_ORIGIN', 'this document has no origin of its own (a sandboxed frame, data: or blob:): it cannot use the wallet');
      if (caller.kind !== 'page') throw new ObolError('UNAUTHORIZED', 'bridge calls come from pages');
      if (typeof m.key !== 'string' || !KEY.test(m.key) || !isPublicRequest(m.request)) {
        throw new ObolError('MALFORMED', 'not a bridge request');
      }
      // The gesture flag is the content script's own field (the page's request is inside `request`).
      const page: PageCaller = { origin: caller.origin, ...(caller.documentId ? { documentId: caller.documentId } : {}), gesture: m.gesture === true };
      return { result: await publicCall(wallet, page, m.key, m.request) };
    }
    if (m.type === WALLET_MESSAGE) {
      if (caller.kind !== 'extension') throw new ObolError('UNAUTHORIZED', 'this call is for the wallet’s own pages');
      if (typeof m.method !== 'string' || !SHOPPER_OPERATIONS.has(m.method as WalletOperation)) throw new ObolError('UNSUPPORTED_METHOD', 'no such wallet method');
      const params = m.params && typeof m.params === 'object' ? m.params : {};
      return { result: await wallet.handleCoreApiRequest(m.method, params) };
    }
    return undefined;
  } catch (e) {
    return errorReply(e);
  }
}

/** The bridge's methods, as the core's page operations. */
const PAGE_DISPATCH: Record<BridgeMethod, (wallet: Wallet, caller: PageCaller, key: string, request: BridgeRequest) => Promise<unknown>> = {
  obol_getInfo: (wallet, caller) => wallet.handleCoreApiRequest('getInfo', { caller }),
  obol_quote: (wallet, caller, _key, request) => wallet.handleCoreApiRequest('quote', { caller, params: (request as BridgeRequest<'obol_quote'>).params }),
  obol_pay: (wallet, caller, key, request) => wallet.handleCoreApiRequest('pay', { caller, key, params: (request as BridgeRequest<'obol_pay'>).params }),
  obol_purchased: (wallet, caller, _key, request) => wallet.handleCoreApiRequest('purchased', { caller, params: (request as BridgeRequest<'obol_purchased'>).params }),
  obol_open: (wallet, caller, _key, request) => wallet.handleCoreApiRequest('open', { caller, params: (request as BridgeRequest<'obol_open'>).params }),
};

function publicCall(wallet: Wallet, caller: PageCaller, key: string, request: BridgeRequest): Promise<unknown> {
  const method: BridgeMethod = request.method;
  if (!Object.hasOwn(PAGE_DISPATCH, method)) throw new ObolError('UNSUPPORTED_METHOD', 'not a public method');
  return PAGE_DISPATCH[method](wallet, caller, key, request);
}
