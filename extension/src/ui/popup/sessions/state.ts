import type { SessionSummary } from '@obol/protocol/customerAgent/figures';
import type { ObolErrorJson } from '@obol/protocol/errors';
import { useState } from 'preact/hooks';
import type { SessionItem } from '../../../shared/messages.ts';
import { type WalletClient, walletClient } from '../../shared/api.ts';
import { type Loaded, errorOf, useWallet } from '../../shared/hooks.ts';

export type SessionsState =
  | { status: 'loading' }
  | { status: 'error'; error: ObolErrorJson }
  | { status: 'empty' }
  | { status: 'ready'; sessions: SessionItem[] };

export function sessionsState(loaded: Loaded<SessionItem[]>): SessionsState {
  if (loaded.status === 'loading') return { status: 'loading' };
  if (loaded.status === 'error') return { status: 'error', error: loaded.error };
  return loaded.data.length === 0 ? { status: 'empty' } : { status: 'ready', sessions: loaded.data };
}

export function useSessions(client: WalletClient = walletClient) {
  const [loaded, reload] = useWallet('sessions', {}, client);
  // The summary of the session the shopper just ended (spent, returned, receipts), until she closes it.
  const [summary, setSummary] = useState<SessionSummary | undefined>();
  const end = async (transactionId: string): Promise<ObolErrorJson | undefined> => {
    try {
      setSummary((await client.call('endSession', { transactionId })).summary);
      reload();
      return undefined;
    } catch (e) {
      return errorOf(e);
    }
  };
  return { state: sessionsState(loaded), end, summary, closeSummary: () => setSummary(undefined) };
}
