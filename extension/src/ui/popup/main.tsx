import { render } from 'preact';
import { useState } from 'preact/hooks';
import '../shared/styles.css';
import { HistoryScreen } from './history/view.tsx';
import { OverviewScreen } from './overview/view.tsx';
import { SessionsScreen } from './sessions/view.tsx';
import { SettingsScreen } from './settings/view.tsx';
import { t } from '../shared/i18n.ts';
import { SitesScreen } from './sites/view.tsx';

const TABS = [
  ['wallet', 'Wallet', OverviewScreen],
  ['sessions', 'Sessions', SessionsScreen],
  ['history', 'History', HistoryScreen],
  ['sites', 'Sites', SitesScreen],
  ['settings', t('spend_settingsTab'), SettingsScreen],
] as const;

type Tab = (typeof TABS)[number][0];

function Popup() {
  const [tab, setTab] = useState<Tab>('wallet');
  const Screen = TABS.find(([id]) => id === tab)?.[2] ?? OverviewScreen;
  return (
    <main class="popup">
      <header class="row between">
        <h1>Obol</h1>
      </header>
      <div role="tablist" class="tabs">
        {TABS.map(([id, label]) => (
          <button key={id} type="button" role="tab" aria-selected={tab === id} class={tab === id ? 'tab active' : 'tab'} onClick={() => setTab(id)}>
            {label}
          </button>
        ))}
      </div>
      <Screen />
    </main>
  );
}

const root = document.getElementById('app');
if (root) render(<Popup />, root);
