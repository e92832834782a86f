import { useState } from 'preact/hooks';
import { type OperatorChoice, shopsOf } from '../../shared/messages.ts';
import { errorText } from '../shared/errorText.ts';
import { money } from '../shared/format.ts';
import { t } from '../shared/i18n.ts';
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
      <h2>{t('onboarding_chooseHeading')}</h2>
      <p class="muted">{t('onboarding_chooseIntro')}</p>
      {operators.map((o) => (
        <label key={o.url} class="choice">
          <input type="radio" name="operator" value={o.url} checked={choice === o.url} onChange={() => setChoice(o.url)} /> {o.name}{' '}
          <span class="muted">{o.url}</span>
        </label>
      ))}
      <label class="choice">
        <input type="radio" name="operator" value="custom" checked={choice === 'custom'} onChange={() => setChoice('custom')} /> {t('onboarding_another')}{' '}
        <input
          aria-label={t('onboarding_operatorUrl')}
          placeholder="https://operator.example"
          value={custom}
          onFocus={() => setChoice('custom')}
          onInput={(e) => setCustom(e.currentTarget.value)}
          size={32}
        />
      </label>
      {choice === 'custom' ? (
        <details open={form?.root ? true : undefined}>
          <summary>{t('onboarding_rootSummary')}</summary>
          <p class="error" role="note">
            {t('onboarding_rootWarning')}
          </p>
          <textarea
            aria-label={t('onboarding_rootLabel')}
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
        {t('onboarding_create')}
      </button>
    </form>
  );
}

export function Onboarding() {
  const { state, operators, register, topUp, skip } = useOnboarding();
  const [amount, setAmount] = useState('100');
  return (
    <main class="onboarding">
      <h1>{t('onboarding_welcome')}</h1>
      {state.status === 'loading' ? <p class="muted">{t('loading')}</p> : null}
      {state.status === 'choose' ? <Choose
          operators={state.operators}
          register={(u, r, f) => void register(u, r, f)}
          {...(state.error ? { error: errorText(state.error) } : {})}
          {...(state.form ? { form: state.form } : {})}
        /> : null}
      {state.status === 'registering' ? <p>{t('onboarding_registering', state.operatorUrl)}</p> : null}
      {state.status === 'top-up' ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void topUp(amount);
          }}
        >
          <h2>{t('onboarding_topUpHeading')}</h2>
          <p>
            {t('onboarding_registeredAt')} <strong>{state.overview.account?.operatorName}</strong>. {t('onboarding_balance')}{' '}
            <span data-testid="balance">{money(state.overview.balance?.balance)}</span>
          </p>
          <label>
            {t('onboarding_amount', state.overview.account?.currency ?? '')} <input aria-label={t('onboarding_topUpAmount')} value={amount} onInput={(e) => setAmount(e.currentTarget.value)} size={8} />
          </label>
          {state.error ? <p class="error">{errorText(state.error)}</p> : null}
          <div class="row">
            <button type="submit" class="primary" disabled={state.busy}>
              {t('onboarding_topUp')}
            </button>
            <button type="button" class="link" onClick={skip}>
              {t('onboarding_skip')}
            </button>
          </div>
        </form>
      ) : null}
      {state.status === 'done' ? (
        <section>
          <h2>{t('onboarding_readyHeading')}</h2>
          <p>
            {t('onboarding_yourBalance')} <strong data-testid="balance">{money(state.overview.balance?.balance)}</strong>
          </p>
          <p>{t('onboarding_readyText')}</p>
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
        {t('onboarding_next')}
      </p>
    );
  }
  return (
    <nav aria-label={t('onboarding_shops')}>
      <h3>{t('onboarding_tryShops')}</h3>
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
