import type { ObolErrorJson } from '@obol/protocol/errors';
import type { Overview, TableState } from '../../../shared/messages.ts';
import type { WalletClient } from '../../shared/api.ts';
import { walletClient } from '../../shared/api.ts';
import { type Loaded, errorOf, useWallet } from '../../shared/hooks.ts';

export interface TableView {
  status: TableState['status'];
  /** A sentence for the shopper. */
  text: string;
  issuedAt?: number;
  expiresAt?: number;
}

export type OverviewState =
  | { status: 'loading' }
  | { status: 'no-account' }
  | { status: 'error'; error: ObolErrorJson }
  | {
      status: 'ready';
      operatorName: string;
      currency: string;
      customerId: string;
      balance?: string;
      available?: string;
      held?: string;
      balanceError?: ObolErrorJson;
      table: TableView;
    };

export function tableView(t: TableState | undefined): TableView {
  if (!t) return { status: 'missing', text: 'No exchange table yet.' };
  const base = { status: t.status, ...(t.issuedAt ? { issuedAt: t.issuedAt } : {}), ...(t.expiresAt ? { expiresAt: t.expiresAt } : {}) };
  switch (t.status) {
    case 'valid':
      return { ...base, text: 'Exchange rates are up to date.' };
    case 'refreshed':
      return { ...base, text: 'Exchange rates were just refreshed from your bank.' };
    case 'unavailable':
      return { ...base, text: `Exchange rates have expired and could not be refreshed${t.error ? ` (${t.error.message})` : ''}: prices in other currencies cannot be shown or paid.` };
    default:
      return { ...base, text: `No exchange rates from your bank${t.error ? ` (${t.error.message})` : ''}: prices in other currencies cannot be shown or paid.` };
  }
}

/** The screen's state from what the wallet answered (pure: tested on its own). */
export function overviewState(loaded: Loaded<Overview>): OverviewState {
  if (loaded.status === 'loading') return { status: 'loading' };
  if (loaded.status === 'error') return { status: 'error', error: loaded.error };
  const o = loaded.data;
  if (!o.account) return { status: 'no-account' };
  const s: OverviewState = {
    status: 'ready',
    operatorName: o.account.operatorName,
    currency: o.account.currency,
    customerId: o.account.customerId,
    table: tableView(o.table),
  };
  if (o.balance) {
    s.balance = o.balance.balance;
    s.available = o.balance.available;
    s.held = o.balance.held;
  }
  if (o.balanceError) s.balanceError = o.balanceError;
  return s;
}

export function useOverview(client: WalletClient = walletClient) {
  const [loaded, reload] = useWallet('overview', {}, client);
  const topUp = async (amount: string): Promise<ObolErrorJson | undefined> => {
    try {
      await client.call('topUp', { amount });
      reload();
      return undefined;
    } catch (e) {
      return errorOf(e);
    }
  };
  return { state: overviewState(loaded), topUp };
}
