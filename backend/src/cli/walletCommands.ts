import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { ObolError } from '@obol/protocol/errors';
import { certToBase64, parseCertBundle } from '@obol/protocol/pki';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
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

/**
 * `obol wallet buy`: a whole purchase from the terminal with the same customer agent the browser
 * wallet runs — register a fresh wallet at an operator, top it up (demo mode), buy, end the
 * session, and print what both operators settled. For operators checking a deployment end to end.
 */
export function addWalletCommands(program: Command): void {
  const wallet = program.command('wallet').description('a throw-away wallet (the customer agent) for end-to-end checks');
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
    .action(async (o: { operator: string; merchant: string; product: string[]; price: string; topUp: string; deposit?: string; trustedRoot?: string[]; operatorConfig?: string }) => {
      const agent = new CustomerAgent({
        store: new MemoryWalletStore(),
        http: undiciHttp,
        clock: systemClock,
        depositPolicy: { ...(o.deposit ? { minimum: o.deposit } : {}), timeoutSec: 300 },
        trustedRoots: await walletTrustedRoots(o),
      });
      const account = await agent.register(o.operator);
      await agent.login();
      if (o.topUp) await agent.demoTopUp(o.topUp);
      const origin = (await agent.merchantInfo(o.merchant)).origins[0];
      const bought = [];
      for (const productId of o.product) {
        const r = await agent.buy({ merchantUrl: o.merchant, productId, price: o.price, ...(origin ? { origin } : {}) });
        bought.push({ productId, transactionId: r.receipt.transactionId, bytes: r.content.length });
      }
      const settled = [];
      for (const tx of await agent.listTransactions()) {
        if (!tx.transactionId) continue;
        if (tx.state === 'open') await agent.endTransaction(tx.transactionId);
        settled.push(await agent.transactionStatus(tx.transactionId));
      }
      console.log(JSON.stringify({ customerId: account.customerId, bought, settled, balance: await agent.balance() }, null, 2));
    });
}
