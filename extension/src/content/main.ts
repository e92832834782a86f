// The content script: the page bridge and nothing else. It relays a page's request to the service
// worker only if it passes the one trust rule (`isBridgeEnvelope`: this very window, the
// page-to-wallet channel, our version, an id, a public method, an object of params — the worker
// checks the params against their schema), adds
// nothing the page could fake (the worker takes the origin from the browser), and posts the answer
// back on the wallet-to-page channel. It announces the wallet on load and on request (EIP-6963
// style). Built as one classic script: content scripts cannot be ES modules.
import {
  ANNOUNCE_EVENT,
  BRIDGE_VERSION,
  type BridgeRequest,
  type BridgeResponse,
  REQUEST_EVENT,
  WALLET_TO_PAGE,
  isBridgeEnvelope,
} from '@obol/protocol/bridgeWire';
import browser from 'webextension-polyfill';
import { BRIDGE_MESSAGE, type BridgeMessage, type Reply } from '../shared/messages.ts';
import { WALLET_INFO } from '../shared/walletInfo.ts';

/** A request the worker could not answer because it was stopped is sent again this many times. */
const RESENDS = 3;

function announce(): void {
  // A frozen copy: listeners on the page cannot change what later listeners see.
  const detail = Object.freeze({ info: Object.freeze({ ...WALLET_INFO }) });
  window.dispatchEvent(new CustomEvent(ANNOUNCE_EVENT, { detail }));
}

function reply(id: string, answer: Reply<unknown>): void {
  const base = { channel: WALLET_TO_PAGE, version: BRIDGE_VERSION, id } as const;
  const message: BridgeResponse = 'error' in answer ? { ...base, error: answer.error } : { ...base, result: answer.result as never };
  window.postMessage(message, window.location.origin === 'null' ? '*' : window.location.origin);
}

function isReply(x: unknown): x is Reply<unknown> {
  return !!x && typeof x === 'object' && ('result' in x || 'error' in x);
}

/** The worker may be stopped while it works on a request: send the same request (same key) again. */
async function relay(request: BridgeRequest): Promise<Reply<unknown>> {
  const message: BridgeMessage = { type: BRIDGE_MESSAGE, key: crypto.randomUUID().replace(/-/g, ''), request };
  let lastError: unknown;
  for (let attempt = 0; attempt <= RESENDS; attempt++) {
    try {
      const answer: unknown = await browser.runtime.sendMessage(message);
      if (isReply(answer)) return answer;
      lastError = new Error('no answer');
    } catch (e) {
      lastError = e;
    }
    await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
  }
  const why = lastError instanceof Error ? lastError.message : 'no answer';
  return { error: { code: 4900, name: 'DISCONNECTED', message: `the wallet did not answer (${why})` } };
}

window.addEventListener('message', (event: MessageEvent) => {
  if (!isBridgeEnvelope(event.data, event.source, window)) return;
  const request = event.data;
  void relay({ channel: request.channel, version: request.version, id: request.id, method: request.method, params: request.params } as BridgeRequest).then((answer) =>
    reply(request.id, answer),
  );
});

window.addEventListener(REQUEST_EVENT, announce);
announce();
