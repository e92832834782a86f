import type { ObolErrorJson } from '@obol/protocol/errors';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { WalletMethod, WalletParams, WalletResult } from '../../shared/messages.ts';
import { type WalletClient, walletClient } from './api.ts';

export type Loaded<T> = { status: 'loading' } | { status: 'ready'; data: T; refreshing: boolean } | { status: 'error'; error: ObolErrorJson };

export function errorOf(e: unknown): ObolErrorJson {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const x = e as { code: number; name?: string; message: string };
    return { code: x.code, name: (x.name ?? 'INTERNAL') as ObolErrorJson['name'], message: x.message } as ObolErrorJson;
  }
  return { code: 6002, name: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** One call of the wallet, fetched on mount and again whenever the worker says something changed. */
export function useWallet<M extends WalletMethod>(
  method: M,
  params: WalletParams<M>,
  client: WalletClient = walletClient,
): [Loaded<WalletResult<M>>, () => void] {
  const [state, setState] = useState<Loaded<WalletResult<M>>>({ status: 'loading' });
  const key = JSON.stringify(params);
  const seq = useRef(0);
  const load = useCallback(() => {
    const mine = ++seq.current;
    setState((s) => (s.status === 'ready' ? { ...s, refreshing: true } : s));
    client.call(method, JSON.parse(key) as WalletParams<M>).then(
      (data) => mine === seq.current && setState({ status: 'ready', data, refreshing: false }),
      (e) => mine === seq.current && setState({ status: 'error', error: errorOf(e) }),
    );
  }, [client, method, key]);
  useEffect(() => {
    load();
    return client.onChanged(load);
  }, [client, load]);
  return [state, load];
}

/** Re-renders every `ms` (for "time left"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
