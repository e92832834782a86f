// The service worker: the wallet core (protocol/src/customerAgent/wallet.ts) on IndexedDB, the two
// message routers that dispatch to it, and the confirmation windows. Every listener is registered synchronously at the top (MV3 wakes the
// worker for an event and runs this file again); all state is in IndexedDB, so the worker can be
// stopped between any two awaits.
import { Wallet } from '@obol/protocol/customerAgent/wallet';
import { fetchHttp } from '@obol/protocol/http';
import browser from 'webextension-polyfill';
import type { Runtime } from 'webextension-polyfill';
import { DEMO_OPERATORS } from '../shared/messages.ts';
import { WALLET_INFO } from '../shared/walletInfo.ts';
import { browserPlatform } from './browserPlatform.ts';
import { openWalletDb } from './db.ts';
import { type Sender, callerOf, route } from './router.ts';
import { BUILT_IN_TRUSTED_ROOTS } from './trustedRoots.ts';

const self = { id: browser.runtime.id, baseUrl: browser.runtime.getURL('') };

const wallet: Promise<Wallet> = openWalletDb().then((db) => {
  const w = new Wallet({ db, platform: browserPlatform, http: fetchHttp(), info: WALLET_INFO, trustedRoots: BUILT_IN_TRUSTED_ROOTS, operators: DEMO_OPERATORS });
  void w.start();
  return w;
});

browser.runtime.onMessage.addListener((message: unknown, sender: Runtime.MessageSender) => {
  const caller = callerOf(sender as Sender, self);
  if (!caller) return undefined;
  // Returning a promise answers asynchronously; undefined lets other listeners (none) answer.
  return wallet.then((w) => route(w, message, caller)).then((reply) => reply ?? { error: { code: 1000, name: 'MALFORMED', message: 'unknown message' } });
});

// Idle sessions end on this alarm (the shopper's setting; the core decides which), so an unused
// deposit comes back without her asking. The `alarms` permission is for this one alarm.
const IDLE_ALARM = 'obol-idle-sessions';
browser.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === IDLE_ALARM) void wallet.then((w) => w.handleCoreApiRequest('tick', {})).catch(() => undefined);
});
void browser.alarms.get(IDLE_ALARM).then((existing) => {
  if (!existing) return browser.alarms.create(IDLE_ALARM, { periodInMinutes: 1 });
});

browser.windows.onRemoved.addListener((windowId) => {
  void wallet.then((w) => w.handleCoreApiRequest('windowClosed', { windowId }));
});

browser.runtime.onInstalled.addListener(async (details) => {
  if (details.reason !== 'install') return;
  const w = await wallet;
  if (!(await w.handleCoreApiRequest('overview', {})).account) await browser.tabs.create({ url: browser.runtime.getURL('onboarding.html') });
});
