import type { ObolErrorJson } from '@obol/protocol/errors';
import type { Overview, TableState } from '../../../shared/messages.ts';
import type { WalletClient } from '../../shared/api.ts';
import { walletClient } from '../../shared/api.ts';
import { errorText } from '../../shared/errorText.ts';
import { type Loaded, errorOf, useWallet } from '../../shared/hooks.ts';
import { t } from '../../shared/i18n.ts';

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

export function tableView(table: TableState | undefined): TableView {
  if (!table) return { status: 'missing', text: t('table_none') };
  const base = { status: table.status, ...(table.issuedAt ? { issuedAt: table.issuedAt } : {}), ...(table.expiresAt ? { expiresAt: table.expiresAt } : {}) };
  switch (table.status) {
    case 'valid':
      return { ...base, text: t('table_valid') };
    case 'refreshed':
      return { ...base, text: t('table_refreshed') };
    case 'unavailable':
      return { ...base, text: table.error ? t('table_unavailableBecause', errorText(table.error)) : t('table_unavailable') };
    default:
      return { ...base, text: table.error ? t('table_missingBecause', errorText(table.error)) : t('table_missing') };
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
