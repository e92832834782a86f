import type { ObolErrorJson } from '@obol/protocol/errors';
import { compare, parseAmount, parseDecimal } from '@obol/protocol/money';
import { useEffect, useState } from 'preact/hooks';
import type { PromptRecord } from '@obol/protocol/walletStore';
import { type WalletClient, walletClient } from '../shared/api.ts';
import { errorText } from '../shared/errorText.ts';
import { money } from '../shared/format.ts';
import { errorOf } from '../shared/hooks.ts';
import { t } from '../shared/i18n.ts';

export type ConfirmState =
  | { status: 'loading' }
  | { status: 'not-found' }
  | { status: 'error'; error: ObolErrorJson }
  | { status: 'waiting'; prompt: PromptRecord }
  | { status: 'sending'; prompt: PromptRecord }
  | { status: 'decided'; accepted: boolean };

/** Checks what the shopper typed: the budget must cover what is spent and held plus this price. */
export function checkLimits(prompt: PromptRecord, budget: string, autoPayLimit: string): string | undefined {
  const currency = parseAmount(prompt.needed).currency;
  try {
    const b = parseDecimal(currency, budget);
    const a = parseDecimal(currency, autoPayLimit);
    if (b.value < 0n || a.value < 0n) return t('confirm_negative');
    if (compare(b, parseAmount(prompt.needed)) < 0) return t('confirm_budgetTooLow', money(prompt.needed));
    return undefined;
  } catch (e) {
    return errorText(errorOf(e));
  }
}

export function useConfirm(id: string | null, client: WalletClient = walletClient) {
  const [state, setState] = useState<ConfirmState>({ status: 'loading' });
  useEffect(() => {
    if (!id) {
      setState({ status: 'not-found' });
      return;
    }
    client.call('prompt', { id }).then(
      (prompt) =>
        setState(!prompt ? { status: 'not-found' } : prompt.status !== 'waiting' ? { status: 'decided', accepted: prompt.status === 'accepted' } : { status: 'waiting', prompt }),
      (e) => setState({ status: 'error', error: errorOf(e) }),
    );
  }, [client, id]);

  const decide = async (accept: boolean, limits?: { budget: string; autoPayLimit: string }) => {
    if (state.status !== 'waiting') return;
    const prompt = state.prompt;
    setState({ status: 'sending', prompt });
    try {
      await client.call('decide', { id: prompt.id, accept, ...(limits ?? {}) });
      setState({ status: 'decided', accepted: accept });
      window.close();
    } catch (e) {
      setState({ status: 'error', error: errorOf(e) });
    }
  };
  return { state, decide };
}
