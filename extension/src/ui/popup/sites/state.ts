import type { ObolErrorJson } from '@obol/protocol/errors';
import type { SiteItem, WalletParams } from '../../../shared/messages.ts';
import { type WalletClient, walletClient } from '../../shared/api.ts';
import { type Loaded, errorOf, useWallet } from '../../shared/hooks.ts';

export type SitesState =
  | { status: 'loading' }
  | { status: 'error'; error: ObolErrorJson }
  | { status: 'empty' }
  | { status: 'ready'; sites: SiteItem[] };

export function sitesState(loaded: Loaded<SiteItem[]>): SitesState {
  if (loaded.status === 'loading') return { status: 'loading' };
  if (loaded.status === 'error') return { status: 'error', error: loaded.error };
  return loaded.data.length === 0 ? { status: 'empty' } : { status: 'ready', sites: loaded.data };
}

/** The sites whose declined window stops them asking, with "allow again". */
export function useDeclined(client: WalletClient = walletClient) {
  const [loaded, reload] = useWallet('declinedSites', {}, client);
  const allowAgain = async (origin: string): Promise<ObolErrorJson | undefined> => {
    try {
      await client.call('allowAgain', { origin });
      reload();
      return undefined;
    } catch (e) {
      return errorOf(e);
    }
  };
  return { declined: loaded.status === 'ready' ? loaded.data : [], allowAgain };
}

export function useSites(client: WalletClient = walletClient) {
  const [loaded, reload] = useWallet('sites', {}, client);
  const save = async (p: WalletParams<'setSite'>): Promise<ObolErrorJson | undefined> => {
    try {
      await client.call('setSite', p);
      reload();
      return undefined;
    } catch (e) {
      return errorOf(e);
    }
  };
  const remove = async (origin: string) => {
    await client.call('removeSite', { origin });
    reload();
  };
  return { state: sitesState(loaded), save, remove };
}
