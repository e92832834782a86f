import { render } from 'preact';
import { useState } from 'preact/hooks';
import '../shared/styles.css';
import { localizeDocument, t } from '../shared/i18n.ts';
import { HistoryScreen } from './history/view.tsx';
import { OverviewScreen } from './overview/view.tsx';
import { SessionsScreen } from './sessions/view.tsx';
import { SettingsScreen } from './settings/view.tsx';
import { SitesScreen } from './sites/view.tsx';

const TABS = [
  ['wallet', 'tab_wallet', OverviewScreen],
  ['sessions', 'tab_sessions', SessionsScreen],
  ['history', 'tab_history', HistoryScreen],
  ['sites', 'tab_sites', SitesScreen],
  ['settings', 'spend_settingsTab', SettingsScreen],
] as const;

type Tab = (typeof TABS)[number][0];

function Popup() {
  const [tab, setTab] = useState<Tab>('wallet');
  const Screen = TABS.find(([id]) => id === tab)?.[2] ?? OverviewScreen;
  return (
    <main class="popup">
      <header class="row between">
        <h1>{t('popup_title')}</h1>
      </header>
      <div role="tablist" class="tabs">
        {TABS.map(([id, label]) => (
          <button key={id} type="button" role="tab" aria-selected={tab === id} class={tab === id ? 'tab active' : 'tab'} onClick={() => setTab(id)}>
            {t(label)}
          </button>
        ))}
      </div>
      <Screen />
    </main>
  );
}

localizeDocument('popup_title');
const root = document.getElementById('app');
if (root) render(<Popup />, root);
