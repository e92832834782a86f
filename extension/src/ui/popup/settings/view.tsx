import { useEffect, useState } from 'preact/hooks';
import { digits, money } from '../../shared/format.ts';
import { errorOf, useWallet } from '../../shared/hooks.ts';
import { walletClient } from '../../shared/api.ts';
import { t } from '../../shared/i18n.ts';

/**
 * The shopper's spending settings: the deposit a new session opens with (within the wallet's
 * limits; the core checks them and says which) and how long an idle session may stay open before
 * the wallet ends it so the unused deposit comes back.
 */
export function SettingsScreen() {
  const [loaded] = useWallet('settings', {});
  const [deposit, setDeposit] = useState('');
  const [idle, setIdle] = useState('');
  const [message, setMessage] = useState<{ error: boolean; text: string } | undefined>();
  const data = loaded.status === 'ready' ? loaded.data : undefined;
  useEffect(() => {
    if (!data) return;
    setDeposit(digits(data.deposit ?? data.defaultDeposit ?? ''));
    setIdle(String(data.idleCloseMinutes));
  }, [data?.deposit, data?.idleCloseMinutes]);
  if (loaded.status === 'loading') return <p class="muted">…</p>;
  if (loaded.status === 'error') return <p class="error">{loaded.error.message}</p>;
  const s = loaded.data;
  return (
    <section aria-label={t('spend_settingsTitle')}>
      <h2>{t('spend_settingsTitle')}</h2>
      <form
        class="grid"
        onSubmit={async (e) => {
          e.preventDefault();
          const minutes = Number(idle);
          try {
            await walletClient.call('setSettings', { deposit, idleCloseMinutes: Number.isFinite(minutes) ? minutes : -1 });
            setMessage({ error: false, text: t('spend_saved') });
          } catch (x) {
            setMessage({ error: true, text: errorOf(x).message });
          }
        }}
      >
        <label>
          {t('spend_depositLabel', s.currency)}{' '}
          <input data-testid="setting-deposit" value={deposit} inputMode="decimal" onInput={(e) => setDeposit(e.currentTarget.value)} size={8} />
        </label>
        {s.depositLimits ? <p class="muted">{t('spend_depositHint', money(s.depositLimits.min), money(s.depositLimits.max), money(s.defaultDeposit))}</p> : null}
        <label>
          {t('spend_idleLabel')}{' '}
          <input data-testid="setting-idle" value={idle} inputMode="numeric" onInput={(e) => setIdle(e.currentTarget.value)} size={5} />
        </label>
        <button type="submit">{t('spend_save')}</button>
      </form>
      {message ? (
        <p class={message.error ? 'error' : 'muted'} role="status">
          {message.text}
        </p>
      ) : null}
    </section>
  );
}
