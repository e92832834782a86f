import { readFile } from 'node:fs/promises';
import { OperatorPaths } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { Command } from 'commander';
import { addWalletCommands } from './cli/walletCommands.ts';
import { getJson, postJson } from './http/client.ts';
import { checkOperatorConfig } from './operator/config.ts';
import {
  createOperatorIdentity,
  createRoot,
  loadOperatorIdentity,
  loadRoot,
  saveKeyPair,
  saveOperatorIdentity,
} from './operator/identity.ts';
import { startOperator } from './operator/server.ts';

/**
 * `obol`: the operator's command line. Keys: `obol root init`, `obol operator init`. Running:
 * `obol operator start`. Administration of a running operator (admin token from --admin-token or
 * OBOL_ADMIN_TOKEN): merchants, funding, balances, audit, positions, deadlines.
 */
const program = new Command('obol').description('Obol micropayments: operator administration').showHelpAfterError();

const root = program.command('root').description('the interbank root CA (PKI zone 1)');
root
  .command('init')
  .requiredOption('--dir <dir>', 'folder for root.key.json and root.cert.pem')
  .option('--name <name>', 'root name', 'Obol Interbank Root')
  .action(async (o: { dir: string; name: string }) => {
    const r = await createRoot(o.name, Date.now());
    await saveKeyPair(o.dir, 'root', r.keys, r.cert);
    console.log(`root CA written to ${o.dir}`);
  });

const operator = program.command('operator').description('run an operator (account manager and acquirer)');
operator
  .command('init')
  .requiredOption('--root <dir>', 'the root CA folder')
  .requiredOption('--id <operatorId>', 'operator id, e.g. op-sek')
  .requiredOption('--dir <dir>', 'the operator key folder to write')
  .action(async (o: { root: string; id: string; dir: string }) => {
    const { identity, keys } = await createOperatorIdentity(await loadRoot(o.root), o.id, Date.now());
    await saveOperatorIdentity(o.dir, keys, identity);
    console.log(`operator ${o.id}: key and certificate written to ${o.dir}`);
  });
operator
  .command('start')
  .requiredOption('--config <file>', 'operator configuration (JSON)')
  .action(async (o: { config: string }) => {
    const config = checkOperatorConfig(JSON.parse(await readFile(o.config, 'utf8')));
    const identity = await loadOperatorIdentity(config.keyDir);
    const server = await startOperator({ config, identity, logger: true });
    console.log(`operator ${config.operatorId} (${config.currency}) listening on ${server.url}`);
    const stop = async () => {
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

interface AdminOpts {
  operator: string;
  adminToken?: string;
}
function adminHeaders(o: AdminOpts) {
  const token = o.adminToken ?? process.env.OBOL_ADMIN_TOKEN;
  if (!token) throw new ObolError('UNAUTHORIZED', 'give --admin-token or set OBOL_ADMIN_TOKEN');
  return { headers: { authorization: `Bearer ${token}` } };
}
const withAdmin = (c: Command) =>
  c.requiredOption('--operator <url>', 'operator base URL').option('--admin-token <token>', 'operator admin token (or OBOL_ADMIN_TOKEN)');
const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));

withAdmin(program.command('register-merchant').description('register a merchant and issue its certificate'))
  .requiredOption('--merchant-id <id>')
  .requiredOption('--public-key <spki>', 'merchant public key, SPKI base64url (or --key-dir)')
  .requiredOption('--url <url>', 'where the merchant module is mounted')
  .requiredOption('--origin <origin...>', 'the web origins of the shop')
  .option('--name <name>')
  .action(async (o: AdminOpts & { merchantId: string; publicKey: string; url: string; origin: string[]; name?: string }) => {
    print(
      await postJson(
        `${o.operator}${OperatorPaths.adminMerchants}`,
        { merchantId: o.merchantId, publicKey: o.publicKey, url: o.url, origins: o.origin, ...(o.name ? { name: o.name } : {}) },
        adminHeaders(o),
      ),
    );
  });

withAdmin(program.command('fund').description('credit a customer account'))
  .requiredOption('--customer <id>')
  .requiredOption('--amount <money>', 'e.g. SEK:100.00')
  .action(async (o: AdminOpts & { customer: string; amount: string }) => {
    print(await postJson(`${o.operator}${OperatorPaths.adminFund}`, { customerId: o.customer, amount: o.amount }, adminHeaders(o)));
  });

withAdmin(program.command('credit-limit').description('set how far an account may go below zero'))
  .requiredOption('--account <id>', 'e.g. customer:<id>')
  .requiredOption('--limit <money>')
  .action(async (o: AdminOpts & { account: string; limit: string }) => {
    print(await postJson(`${o.operator}${OperatorPaths.adminCreditLimit}`, { accountId: o.account, limit: o.limit }, adminHeaders(o)));
  });

withAdmin(program.command('balances').description('every account and its balance')).action(async (o: AdminOpts) => {
  print(await getJson(`${o.operator}${OperatorPaths.adminBalances}`, adminHeaders(o)));
});

withAdmin(program.command('audit').description('check the ledger: every currency sums to zero, no account under its limit')).action(
  async (o: AdminOpts) => {
    const report = (await getJson(`${o.operator}${OperatorPaths.adminAudit}`, adminHeaders(o))) as { ok: boolean };
    print(report);
    if (!report.ok) process.exitCode = 1;
  },
);

withAdmin(program.command('positions').description('net positions with other operators')).action(async (o: AdminOpts) => {
  print(await getJson(`${o.operator}${OperatorPaths.adminPositions}`, adminHeaders(o)));
});

withAdmin(program.command('settle').description('settle transactions whose reporting deadline passed')).action(async (o: AdminOpts) => {
  print(await postJson(`${o.operator}${OperatorPaths.adminSettleDeadlines}`, {}, adminHeaders(o)));
});

addWalletCommands(program);

program.parseAsync().catch((e: unknown) => {
  if (e instanceof ObolError) console.error(`obol: ${e.name} (${e.code}): ${e.message}`);
  else console.error(`obol: ${(e as Error).message}`);
  process.exit(1);
});
