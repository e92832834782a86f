import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '@obol/protocol/clock';
import { headlessPlatform } from '@obol/protocol/customerAgent/platform';
import { Wallet } from '@obol/protocol/customerAgent/wallet';
import { ObolError } from '@obol/protocol/errors';
import type { Http } from '@obol/protocol/http';
import { parseAmount } from '@obol/protocol/money';
import { certToBase64, parseCertBundle } from '@obol/protocol/pki';
import { MemoryWalletDatabase } from '@obol/protocol/walletDatabase';
import type { Command } from 'commander';
import { undiciHttp } from '../http/client.ts';
import { checkOperatorConfig } from '../operator/config.ts';

/**
 * The interbank roots the throw-away wallet trusts: PEM files given with --trusted-root (a file may
 * be a bundle), or the root.cert.pem in the key folder of an operator configuration the caller runs.
 * There is no default: a wallet that took the root from the operator's answer would trust anyone.
 */
export async function walletTrustedRoots(o: { trustedRoot?: string[]; operatorConfig?: string }): Promise<string[]> {
  const files = [...(o.trustedRoot ?? [])];
  if (o.operatorConfig) {
    const config = checkOperatorConfig(JSON.parse(await readFile(o.operatorConfig, 'utf8')));
    files.push(join(config.keyDir, 'root.cert.pem'));
  }
  if (files.length === 0) {
    throw new ObolError('OPERATOR_NOT_TRUSTED', 'name the interbank root to trust: --trusted-root <root.cert.pem> or --operator-config <file>');
  }
  const roots: string[] = [];
  for (const f of files) roots.push(...parseCertBundle(await readFile(f, 'utf8')).map(certToBase64));
  return roots;
}

/** How the CLI's wallet introduces itself (to pages it never meets: the core needs a name). */
const CLI_WALLET_INFO = { uuid: 'obol-cli-wallet', name: 'Obol CLI wallet', icon: '', rdns: 'org.obol.cli' };

/**
 * `obol wallet buy`: a whole purchase from the terminal with the same wallet core the browser
 * extension runs (protocol/src/customerAgent/wallet.ts, called through its one entry point) on a
 * memory database — register a fresh wallet at an operator, top it up (demo mode), buy, end the
 * session, and print what both operators settled. For operators checking a deployment end to end.
 */
export function addWalletCommands(program: Command): void {
  const wallet = program.command('wallet').description('a throw-away wallet (the wallet core) for end-to-end checks');
  wallet
    .command('buy')
    .requiredOption('--operator <url>', "the shopper's operator")
    .requiredOption('--merchant <url>', 'where the shop mounted the merchant module, e.g. http://127.0.0.1:7201/obol')
    .requiredOption('--product <id...>', 'product ids to buy, in order')
    .requiredOption('--price <money>', 'the price of each, in the merchant currency, e.g. EUR:0.03')
    .option('--top-up <money>', 'demo top-up before buying', '')
    .option('--deposit <money>', "smallest deposit, in the shopper's currency")
    .option('--trusted-root <file...>', 'interbank root certificate(s) to trust (PEM; a bundle is fine)')
    .option('--operator-config <file>', 'trust the root in the key folder of this operator configuration')
    .action(async (o: WalletBuyOptions) => {
      console.log(JSON.stringify(await walletBuy(o), null, 2));
    });
}

export interface WalletBuyOptions {
  operator: string;
  merchant: string;
  product: string[];
  price: string;
  topUp: string;
  deposit?: string;
  trustedRoot?: string[];
  operatorConfig?: string;
}

/** The `wallet buy` command's work, through the wallet core's entry point only. */
export async function walletBuy(o: WalletBuyOptions, http: Http = undiciHttp) {
  const trustedRoots = await walletTrustedRoots(o);
  const core = new Wallet({
    db: new MemoryWalletDatabase(),
    platform: headlessPlatform(() => systemClock.now()),
    http,
    info: CLI_WALLET_INFO,
    trustedRoots,
    timeoutSec: 300,
    resumeDelayMs: 0,
    ...(o.deposit ? { deposits: { [parseAmount(o.deposit).currency]: o.deposit } } : {}),
  });
  const registered = await core.handleCoreApiRequest('register', { operatorUrl: o.operator });
  if (o.topUp) await core.handleCoreApiRequest('topUp', { amount: o.topUp });
  const bought = [];
  for (const productId of o.product) {
    const r = await core.handleCoreApiRequest('purchase', { merchantUrl: o.merchant, productId, price: o.price });
    bought.push({ productId, receiptId: r.receiptId, n: r.n, bytes: Buffer.from(r.content, 'base64url').length });
  }
  const sessions = await core.handleCoreApiRequest('sessions', {});
  await core.handleCoreApiRequest('endAllSessions', {});
  const settled = [];
  for (const s of sessions) if (s.transactionId) settled.push(await core.handleCoreApiRequest('settlement', { transactionId: s.transactionId }));
  const { balance } = await core.handleCoreApiRequest('overview', {});
  return { customerId: registered.account?.customerId, bought, sessions, settled, balance };
}
