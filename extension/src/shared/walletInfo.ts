import type { WalletInfo } from '@obol/protocol/bridgeWire';

/** The Obol coin: the wallet's icon for pages, and the source of the toolbar icons (e2e/scripts/extensionIcons.ts). */
export const COIN_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#b8860b"/>' +
  '<circle cx="16" cy="16" r="11" fill="none" stroke="#fff8dc" stroke-width="2"/><text x="16" y="21" font-size="13" ' +
  'text-anchor="middle" fill="#fff8dc" font-family="sans-serif" font-weight="bold">O</text></svg>';

const ICON = `data:image/svg+xml;base64,${btoa(COIN_SVG)}`;

/** How the wallet announces itself to pages (EIP-6963 style). The uuid is per wallet build. */
export const WALLET_INFO: WalletInfo = {
  uuid: '6f1c2b1e-4c7a-4d0e-9b1a-0b010b010001',
  name: 'Obol Wallet',
  icon: ICON,
  rdns: 'org.obol.wallet',
};
