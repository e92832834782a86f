// The content script: the page bridge and nothing else. It relays a page's request to the service
// worker only if it passes the one trust rule (`isBridgeEnvelope`: this very window, the
// page-to-wallet channel, our version, an id, a public method, an object of params — the worker
// checks the params against their schema), adds
// nothing the page could fake (the worker takes the origin from the browser), and posts the answer
// back on the wallet-to-page channel. The one fact it adds is its own: whether a payment request
// arrived during a real user gesture not yet spent on another purchase (activation.ts). It announces the wallet on load and on request (EIP-6963
// style). Built as one classic script: content scripts cannot be ES modules.
import { backoffDelay } from '@obol/protocol/backoff';
import {
  ANNOUNCE_EVENT,
  BRIDGE_VERSION,
  type BridgeRequest,
  type BridgeResponse,
  REQUEST_EVENT,
  WALLET_TO_PAGE,
  isBridgeEnvelope,
} from '@obol/protocol/bridgeWire';
import type { ObolErrorJson } from '@obol/protocol/errors';
import browser from 'webextension-polyfill';
import { BRIDGE_MESSAGE, type BridgeMessage, type Reply } from '../shared/messages.ts';
import { WALLET_INFO } from '../shared/walletInfo.ts';
import { GESTURE_EVENTS, GestureLedger, frameIsActive } from './activation.ts';

/** A request the worker could not answer because it was stopped is sent again this many times. */
const RESENDS = 3;
/**
 * The waits between those resends (Obol's one back-off): a stopped worker takes a moment to start
 * again, so the first resend comes after about 200 ms and each later one waits twice as long
 * (about 0.2, 0.4, 0.8 s), spread a little so that the requests of many frames do not all land
 * on the restarting worker in the same instant.
 */
const RESEND_BACKOFF = { baseMs: 200, factor: 2, capMs: 2_000, jitter: 0.2 } as const;

function announce(): void {
  // A frozen copy: listeners on the page cannot change what later listeners see.
  const detail = Object.freeze({ info: Object.freeze({ ...WALLET_INFO }) });
  window.dispatchEvent(new CustomEvent(ANNOUNCE_EVENT, { detail }));
}

const gestures = new GestureLedger(frameIsActive);
for (const type of GESTURE_EVENTS) window.addEventListener(type, (e) => gestures.observe(e), { capture: true, passive: true });

/** This document's own origin: "null" when opaque (a sandboxed frame, data:), whatever its URL says. */
function documentOrigin(): string {
  return typeof window.origin === 'string' ? window.origin : window.location.origin;
}

function reply(id: string, answer: Reply<unknown>): void {
  const base = { channel: WALLET_TO_PAGE, version: BRIDGE_VERSION, id } as const;
  const origin = documentOrigin();
  if (origin === 'null') {
    // An opaque document cannot be addressed by origin, so the answer goes to '*' — and therefore
    // carries nothing but a refusal (the worker refuses opaque origins anyway; this is the guard
    // that no result could ever leave that way).
    const error: ObolErrorJson = 'error' in answer ? answer.error : { code: 4306, name: 'OPAQUE_ORIGIN', message: 'a document with an opaque origin cannot use the wallet' };
    window.postMessage({ ...base, error } satisfies BridgeResponse, '*');
    return;
  }
  const message: BridgeResponse = 'error' in answer ? { ...base, error: answer.error } : { ...base, result: answer.result as never };
  window.postMessage(message, origin);
}

function isReply(x: unknown): x is Reply<unknown> {
  return !!x && typeof x === 'object' && ('result' in x || 'error' in x);
}

/** The worker may be stopped while it works on a request: send the same request (same key) again. */
async function relay(request: BridgeRequest, gesture: boolean): Promise<Reply<unknown>> {
  const message: BridgeMessage = { type: BRIDGE_MESSAGE, key: crypto.randomUUID().replace(/-/g, ''), request, gesture };
  let lastError: unknown;
  for (let attempt = 0; attempt <= RESENDS; attempt++) {
    // Wait only before a resend: never before the first send, nor after the last one.
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, RESEND_BACKOFF)));
    try {
      const answer: unknown = await browser.runtime.sendMessage(message);
      if (isReply(answer)) return answer;
      lastError = new Error('no answer');
    } catch (e) {
      lastError = e;
    }
  }
  const why = lastError instanceof Error ? lastError.message : 'no answer';
  return { error: { code: 4900, name: 'DISCONNECTED', message: `the wallet did not answer (${why})` } };
}

window.addEventListener('message', (event: MessageEvent) => {
  if (!isBridgeEnvelope(event.data, event.source, window)) return;
  const request = event.data;
  // Read now, as the request arrives: the gesture must be this moment's, and only a payment spends it.
  const gesture = request.method === 'obol_pay' && gestures.take();
  void relay({ channel: request.channel, version: request.version, id: request.id, method: request.method, params: request.params } as BridgeRequest, gesture).then(
    (answer) => reply(request.id, answer),
  );
});

window.addEventListener(REQUEST_EVENT, announce);
announce();
