import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { type BrowserContext, type Page, type Worker, chromium } from '@playwright/test';
import { chromiumArgs, chromiumPath } from '../chromium.ts';
import { demoRootDir, ensureBuilt, repoRoot } from './build.ts';

export const extensionDir = join(repoRoot, 'extension');
export const extensionDist = join(extensionDir, 'dist');

/** Whether extension/dist is the demo build (OBOL_DEMO=1: its content script runs on the demo's http://127.0.0.1 pages). */
function isDemoBuild(): boolean {
  const file = join(extensionDist, 'manifest.json');
  if (!existsSync(file)) return false;
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as { content_scripts?: Array<{ matches: string[] }> };
  return manifest.content_scripts?.some((cs) => cs.matches.includes('http://127.0.0.1/*')) ?? false;
}

/**
 * Builds extension/dist — the demo build, OBOL_DEMO=1, since the test world's shops are plain http
 * on 127.0.0.1 — when it is missing, a production build, or older than the extension's sources or
 * the demo root it embeds (made by the build when missing, so a first run needs no hand step).
 */
export function ensureExtensionBuilt(): void {
  ensureBuilt('extension', 'extension/dist/background.js', ['extension/src', 'extension/public', 'extension/scripts', 'protocol/src', relative(repoRoot, demoRootDir())], {
    env: { OBOL_DEMO: '1' },
    stale: !isDemoBuild(),
  });
}

export interface ExtensionBrowser {
  context: BrowserContext;
  extensionId: string;
  /** chrome-extension://<id>/<path> */
  url(path: string): string;
  serviceWorker(): Promise<Worker>;
  /** Stops the extension's service worker as the browser would (CDP Target.closeTarget). */
  stopServiceWorker(): Promise<void>;
  /** Opens an extension page (popup.html, onboarding.html…) in a tab. */
  openPage(path: string): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Headless Debian Chromium with the built wallet loaded unpacked, in a fresh profile.
 * `language` (e.g. "sv"): the browser's UI language, which is what `chrome.i18n` picks the
 * extension's `_locales` by. Debian's Chromium 156 under Playwright needs all three: `--lang`,
 * LANGUAGE and LANG in its environment (Linux reads the UI language from there) and Playwright's `locale`
 * (tried alone: `--lang` or LANGUAGE leave getUILanguage() at en-US; `locale` alone makes it say
 * "sv" while the extension's messages stay English).
 */
export async function launchWithExtension(opts: { build?: boolean; language?: string } = {}): Promise<ExtensionBrowser> {
  if (opts.build !== false) ensureExtensionBuilt();
  const userDataDir = mkdtempSync(join(tmpdir(), 'obol-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath(),
    headless: true,
    args: [...chromiumArgs, `--disable-extensions-except=${extensionDist}`, `--load-extension=${extensionDist}`, ...(opts.language ? [`--lang=${opts.language}`] : [])],
    ...(opts.language ? { locale: opts.language, env: { ...process.env, LANGUAGE: opts.language, LC_ALL: '', LANG: `${opts.language}.UTF-8` } } : {}),
  });
  const serviceWorker = async (): Promise<Worker> => {
    const found = context.serviceWorkers().find((w) => w.url().startsWith('chrome-extension://'));
    return found ?? context.waitForEvent('serviceworker', { predicate: (w) => w.url().startsWith('chrome-extension://') });
  };
  const extensionId = new URL((await serviceWorker()).url()).host;
  const url = (path: string) => `chrome-extension://${extensionId}/${path.replace(/^\//, '')}`;
  return {
    context,
    extensionId,
    url,
    serviceWorker,
    async stopServiceWorker() {
      // DevTools' "Stop" (ServiceWorker.stopWorker) through an extension page of ours: it stops the
      // worker at once. (Target.closeTarget on the worker's target answers success but, on this
      // Chromium, leaves the worker running for a while.)
      const page = await context.newPage();
      await page.goto(url('popup.html'));
      const cdp = await context.newCDPSession(page);
      try {
        const mine = `chrome-extension://${extensionId}/`;
        const status = new Map<string, string>();
        let changed = () => {};
        cdp.on('ServiceWorker.workerVersionUpdated', (e: { versions: Array<{ versionId: string; runningStatus: string; scriptURL: string }> }) => {
          for (const v of e.versions) if (v.scriptURL.startsWith(mine)) status.set(v.versionId, v.runningStatus);
          changed();
        });
        const until = async (ok: () => boolean) => {
          const deadline = Date.now() + 10_000;
          while (!ok()) {
            if (Date.now() > deadline) throw new Error(`the service worker did not stop (${JSON.stringify([...status])})`);
            await new Promise<void>((resolve) => {
              changed = resolve;
              setTimeout(resolve, 100);
            });
          }
        };
        await cdp.send('ServiceWorker.enable');
        await until(() => status.size > 0);
        for (const [versionId, s] of status) if (s !== 'stopped') await cdp.send('ServiceWorker.stopWorker', { versionId });
        await until(() => [...status.values()].every((s) => s === 'stopped'));
      } finally {
        await cdp.detach().catch(() => undefined);
        await page.close();
      }
    },
    async openPage(path: string) {
      const page = await context.newPage();
      await page.goto(url(path));
      return page;
    },
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
