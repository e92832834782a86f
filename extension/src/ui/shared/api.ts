import { ObolError } from '@obol/protocol/errors';
import browser from 'webextension-polyfill';
import { CHANGED_MESSAGE, type Reply, WALLET_MESSAGE, type WalletMethod, type WalletParams, type WalletResult } from '../../shared/messages.ts';

/**
 * The extension pages' typed client of the service worker. Pages never touch storage: they ask,
 * and refetch when the worker broadcasts that something changed.
 */
export interface WalletClient {
  call<M extends WalletMethod>(method: M, params: WalletParams<M>): Promise<WalletResult<M>>;
  onChanged(listener: () => void): () => void;
}

export const walletClient: WalletClient = {
  async call(method, params) {
    let reply: Reply<unknown> | undefined;
    try {
      reply = (await browser.runtime.sendMessage({ type: WALLET_MESSAGE, method, params })) as Reply<unknown> | undefined;
    } catch {
      // The worker was stopped while answering: ask once more (it starts again for the message).
      reply = (await browser.runtime.sendMessage({ type: WALLET_MESSAGE, method, params })) as Reply<unknown> | undefined;
    }
    if (!reply) throw new ObolError('DISCONNECTED', 'the wallet did not answer');
    if ('error' in reply) throw ObolError.fromJSON(reply.error);
    return reply.result as never;
  },
  onChanged(listener) {
    const handler = (message: unknown) => {
      if (message && typeof message === 'object' && (message as { type?: unknown }).type === CHANGED_MESSAGE) listener();
      return undefined;
    };
    browser.runtime.onMessage.addListener(handler);
    return () => browser.runtime.onMessage.removeListener(handler);
  },
};
