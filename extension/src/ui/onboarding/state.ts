import type { ObolErrorJson } from '@obol/protocol/errors';
import { useEffect, useState } from 'preact/hooks';
import type { OperatorChoice, Overview } from '../../shared/messages.ts';
import { type WalletClient, walletClient } from '../shared/api.ts';
import { errorOf } from '../shared/hooks.ts';

/** What the shopper set in the choose form: kept through a failed registration, shown again as she left it. */
export interface ChooseForm {
  /** A listed operator's URL, or 'custom'. */
  choice: string;
  /** The URL typed in the "another operator" field. */
  custom: string;
  /** The PEM root pasted for that operator. */
  root: string;
}

export type OnboardingState =
  | { status: 'loading' }
  | { status: 'choose'; operators: OperatorChoice[]; error?: ObolErrorJson; form?: ChooseForm }
  | { status: 'registering'; operatorUrl: string }
  | { status: 'top-up'; overview: Overview; busy: boolean; error?: ObolErrorJson }
  | { status: 'done'; overview: Overview };

export function useOnboarding(client: WalletClient = walletClient) {
  const [state, setState] = useState<OnboardingState>({ status: 'loading' });
  /** The listed operators (kept for the ready screen's links to their shops). */
  const [operators, setOperators] = useState<OperatorChoice[]>([]);
  useEffect(() => {
    Promise.all([client.call('overview', {}), client.call('operators', {})]).then(
      ([overview, operators]) => {
        setOperators(operators);
        setState(overview.account ? { status: 'top-up', overview, busy: false } : { status: 'choose', operators });
      },
      (e) => setState({ status: 'choose', operators: [], error: errorOf(e) }),
    );
  }, [client]);

  /**
   * `trustedRoot`: a PEM root the shopper pasted for an operator outside the wallet's built-in roots.
   * `form`: the choose form as she filled it; a failed registration shows it again as it was (her
   * typed URL, still selected), with the error.
   */
  const register = async (operatorUrl: string, trustedRoot?: string, form?: ChooseForm) => {
    const listed = state.status === 'choose' ? state.operators : operators;
    setState({ status: 'registering', operatorUrl });
    try {
      const overview = await client.call('register', trustedRoot ? { operatorUrl, trustedRoot } : { operatorUrl });
      setState({ status: 'top-up', overview, busy: false });
    } catch (e) {
      setState({ status: 'choose', operators: listed, error: errorOf(e), ...(form ? { form } : {}) });
    }
  };

  const topUp = async (amount: string) => {
    if (state.status !== 'top-up') return;
    const overview = state.overview;
    setState({ status: 'top-up', overview, busy: true });
    try {
      setState({ status: 'done', overview: await client.call('topUp', { amount }) });
    } catch (e) {
      setState({ status: 'top-up', overview, busy: false, error: errorOf(e) });
    }
  };

  const skip = () => state.status === 'top-up' && setState({ status: 'done', overview: state.overview });
  return { state, operators, register, topUp, skip };
}
