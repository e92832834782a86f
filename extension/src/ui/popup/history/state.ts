import type { ObolErrorJson } from '@obol/protocol/errors';
import type { History } from '../../../shared/messages.ts';
import { type WalletClient, walletClient } from '../../shared/api.ts';
import { download } from '../../shared/format.ts';
import { type Loaded, errorOf, useWallet } from '../../shared/hooks.ts';

export type HistoryState =
  | { status: 'loading' }
  | { status: 'error'; error: ObolErrorJson }
  | { status: 'empty' }
  | { status: 'ready'; history: History };

export function historyState(loaded: Loaded<History>): HistoryState {
  if (loaded.status === 'loading') return { status: 'loading' };
  if (loaded.status === 'error') return { status: 'error', error: loaded.error };
  const h = loaded.data;
  return h.receipts.length === 0 && h.activity.length === 0 && h.transactions.length === 0 ? { status: 'empty' } : { status: 'ready', history: h };
}

export function useHistory(client: WalletClient = walletClient) {
  const [loaded] = useWallet('history', {}, client);
  const exportEvidence = async (transactionId: string, n: number): Promise<ObolErrorJson | undefined> => {
    try {
      const evidence = await client.call('evidence', { transactionId, n });
      download(`obol-evidence-${transactionId}-${n}.json`, evidence);
      return undefined;
    } catch (e) {
      return errorOf(e);
    }
  };
  const exportReceipts = (h: History) => download('obol-receipts.json', h.receipts.map((r) => r.receipt));
  const content = (transactionId: string, n: number) => client.call('content', { transactionId, n });
  return { state: historyState(loaded), exportEvidence, exportReceipts, content };
}
