import { useState } from 'preact/hooks';
import { type OperatorChoice, shopsOf } from '../../shared/messages.ts';
import { money } from '../shared/format.ts';
import { type ChooseForm, useOnboarding } from './state.ts';

function Choose({
  operators,
  register,
  error,
  form,
}: { operators: OperatorChoice[]; register: (url: string, trustedRoot: string | undefined, form: ChooseForm) => void; error?: string; form?: ChooseForm }) {
  // After a failed registration the form comes back as the shopper left it.
  const [choice, setChoice] = useState(form?.choice ?? operators[0]?.url ?? 'custom');
  const [custom, setCustom] = useState(form?.custom ?? '');
  const [root, setRoot] = useState(form?.root ?? '');
  const url = choice === 'custom' ? custom.trim() : choice;
  const extraRoot = choice === 'custom' && root.trim() ? root.trim() : undefined;
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (url) register(url, extraRoot, { choice, custom, root });
      }}
    >
      <h2>1. Choose your bank</h2>
      <p class="muted">Your bank (an Obol operator) holds your money, certifies your wallet’s key and reserves deposits for you.</p>
      {operators.map((o) => (
        <label key={o.url} class="choice">
          <input type="radio" name="operator" value={o.url} checked={choice === o.url} onChange={() => setChoice(o.url)} /> {o.name}{' '}
          <span class="muted">{o.url}</span>
        </label>
      ))}
      <label class="choice">
        <input type="radio" name="operator" value="custom" checked={choice === 'custom'} onChange={() => setChoice('custom')} /> Another operator:{' '}
        <input
          aria-label="operator URL"
          placeholder="https://operator.example"
          value={custom}
          onFocus={() => setChoice('custom')}
          onInput={(e) => setCustom(e.currentTarget.value)}
          size={32}
        />
      </label>
      {choice === 'custom' ? (
        <details open={form?.root ? true : undefined}>
          <summary>My operator is not under a root this wallet trusts</summary>
          <p class="error" role="note">
            This wallet trusts only the interbank roots it was built with. Add another root only if you got it from your bank through a channel
            you trust (not from a web page or an e-mail): whoever holds that root’s key can pose as any operator under it and take your money.
            It is trusted for this account only.
          </p>
          <textarea
            aria-label="operator root certificate (PEM)"
            placeholder="-----BEGIN CERTIFICATE-----"
            rows={6}
            cols={64}
            value={root}
            onInput={(e) => setRoot(e.currentTarget.value)}
          />
        </details>
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" class="primary" disabled={!url}>
        Create my wallet account
      </button>
    </form>
  );
}

export function Onboarding() {
  const { state, operators, register, topUp, skip } = useOnboarding();
  const [amount, setAmount] = useState('100');
  return (
    <main class="onboarding">
      <h1>Welcome to Obol</h1>
      {state.status === 'loading' ? <p class="muted">Loading…</p> : null}
      {state.status === 'choose' ? <Choose
          operators={state.operators}
          register={(u, r, f) => void register(u, r, f)}
          {...(state.error ? { error: state.error.message } : {})}
          {...(state.form ? { form: state.form } : {})}
        /> : null}
      {state.status === 'registering' ? <p>Creating your key and registering at {state.operatorUrl}…</p> : null}
      {state.status === 'top-up' ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void topUp(amount);
          }}
        >
          <h2>2. Add demo money</h2>
          <p>
            Registered at <strong>{state.overview.account?.operatorName}</strong> as {state.overview.account?.customerId}. Balance:{' '}
            <span data-testid="balance">{money(state.overview.balance?.balance)}</span>
          </p>
          <label>
            Amount ({state.overview.account?.currency}) <input aria-label="top-up amount" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} size={8} />
          </label>
          {state.error ? <p class="error">{state.error.message}</p> : null}
          <div class="row">
            <button type="submit" class="primary" disabled={state.busy}>
              Top up
            </button>
            <button type="button" class="link" onClick={skip}>
              Skip
            </button>
          </div>
        </form>
      ) : null}
      {state.status === 'done' ? (
        <section>
          <h2>3. Ready</h2>
          <p>
            Your balance: <strong data-testid="balance">{money(state.overview.balance?.balance)}</strong>
          </p>
          <p>Click a price on a site that takes Obol. The first purchase at a site asks you in a wallet window; after that, purchases within the site’s budget go through in a blink.</p>
          <WayOn shops={shopsOf(operators, state.overview.account?.operatorUrl)} />
        </section>
      ) : null}
    </main>
  );
}

/** The ready screen's way on: the shops of a listed (demo) operator, or else what to do next. */
function WayOn({ shops }: { shops: Array<{ name: string; url: string }> }) {
  if (shops.length === 0) {
    return (
      <p data-testid="next-step">
        Next: open a site that takes Obol and click a price. Your balance, open sessions and receipts are under the Obol icon in the browser’s toolbar (pin it from the
        extensions menu to keep it in sight).
      </p>
    );
  }
  return (
    <nav aria-label="Shops to try">
      <h3>Try it in the demo’s shops</h3>
      <ul data-testid="shops">
        {shops.map((s) => (
          <li key={s.url}>
            <a href={s.url} target="_blank" rel="noopener noreferrer">
              {s.name}
            </a>{' '}
            <span class="muted">{s.url}</span>
          </li>
        ))}
      </ul>
    </nav>
  );
}
