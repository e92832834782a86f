import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OperatorPaths } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { parseCert } from '@obol/protocol/pki';
import { Command } from 'commander';
import { Arbiter, createArbiterKeyDir } from './arbiter/arbiter.ts';
import { formatReport } from './arbiter/report.ts';
import { startArbiterServer } from './arbiter/server.ts';
import { addWalletCommands } from './cli/walletCommands.ts';
import { getJson, postJson } from './http/client.ts';
import { TLS_CERT_DAYS, type TlsFiles, issueTls, operatorChainPem, writeTls } from './http/tls.ts';
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
import { addMerchantCommands, readJsonFile } from './cli/merchantCommands.ts';
import { verifyRegistration } from './merchant/setup.ts';

/**
 * `obol`: the operator's command line. Keys: `obol root init`, `obol operator init`. Running:
 * `obol operator start`. Administration of a running operator (admin token from --admin-token or
 * OBOL_ADMIN_TOKEN): merchants, funding, balances, audit, positions, deadlines. A shop's catalogue:
 * `obol merchant add-product` (shop admin token). Disputes: `obol arbiter init | judge | serve`.
 */
const program = new Command('obol').description('Obol micropayments: operator administration').showHelpAfterError();

const root = program.command('root').description('the interbank root CA (PKI zone 1)');
root
  .command('init')
  .requiredOption('--dir <dir>', 'folder for root.key.json and root.cert.pem')
  .option('--name <name>', 'root name', 'Obol Interbank Root')
  .option('--if-missing', 'keep a root already in the folder (builds and the demo share one root)')
  .action(async (o: { dir: string; name: string; ifMissing?: boolean }) => {
    if (o.ifMissing && existsSync(join(o.dir, 'root.key.json'))) return;
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
  .option('--tls-cert <file>', 'serve HTTPS: the certificate chain (PEM), e.g. from `obol operator issue-tls-cert` (overrides the configuration)')
  .option('--tls-key <file>', 'serve HTTPS: the private key (PEM)')
  .action(async (o: { config: string; tlsCert?: string; tlsKey?: string }) => {
    const config = checkOperatorConfig(JSON.parse(await readFile(o.config, 'utf8')));
    const tls = tlsOption(o);
    if (tls) config.tls = tls;
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

operator
  .command('issue-tls-cert')
  .description('a TLS server certificate for an Obol server (this operator, a shop, an arbiter), issued by the operator; writes the chain and the key (0600)')
  .requiredOption('--key-dir <dir>', 'the operator key folder (obol operator init)')
  .requiredOption('--name <name...>', 'DNS names and IP addresses the server is reached by, e.g. pay.example.com 127.0.0.1')
  .requiredOption('--cert <file>', 'where to write the certificate chain (PEM: the server certificate, then the operator certificate)')
  .requiredOption('--key <file>', 'where to write the private key (PEM, PKCS#8)')
  .option('--ca <file>', 'also write what clients trust (PEM: the operator certificate and the root)')
  .option('--days <days>', 'validity in days', String(TLS_CERT_DAYS))
  .action(async (o: { keyDir: string; name: string[]; cert: string; key: string; ca?: string; days: string }) => {
    const identity = await loadOperatorIdentity(o.keyDir);
    await writeTls(await issueTls(identity, o.name, Date.now(), Number(o.days)), { cert: o.cert, key: o.key });
    if (o.ca) await writeFile(o.ca, operatorChainPem(identity), { flag: 'wx' });
    console.log(`TLS certificate for ${o.name.join(', ')} issued by ${identity.operatorId}: ${o.cert}, key ${o.key}${o.ca ? `, trust ${o.ca}` : ''}`);
  });

/** `--tls-cert` and `--tls-key` go together. */
function tlsOption(o: { tlsCert?: string; tlsKey?: string }): TlsFiles | undefined {
  if (!o.tlsCert && !o.tlsKey) return undefined;
  if (!o.tlsCert || !o.tlsKey) throw new ObolError('MALFORMED', 'give both --tls-cert and --tls-key');
  return { cert: o.tlsCert, key: o.tlsKey };
}

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
  .option('--request <file>', 'the signed registration request `obol merchant init` wrote (registration-request.json)')
  .option('--out <file>', 'write the answer here (the merchant puts it in its folder as registration.json)')
  .option('--merchant-id <id>', 'without --request: the merchant id')
  .option('--public-key <spki>', 'without --request: the merchant public key, SPKI base64url')
  .option('--url <url>', 'without --request: where the merchant module is mounted')
  .option('--origin <origin...>', 'without --request: the web origins of the shop')
  .option('--name <name>', 'without --request: the name shown to shoppers')
  .action(
    async (
      o: AdminOpts & { request?: string; out?: string; merchantId?: string; publicKey?: string; url?: string; origin?: string[]; name?: string },
    ) => {
      let registration: { merchantId: string; publicKey: string; url: string; origins: string[]; name?: string };
      if (o.request) {
        if (o.merchantId || o.publicKey || o.url || o.origin || o.name) {
          throw new ObolError('MALFORMED', 'give either --request or the merchant’s fields, not both');
        }
        const info = (await getJson(`${o.operator}${OperatorPaths.info}`)) as { operatorId: string };
        const { merchantId, publicKey, url, origins, name } = await verifyRegistration(await readJsonFile(o.request), info.operatorId);
        registration = { merchantId, publicKey, url, origins, name };
      } else {
        if (!o.merchantId || !o.publicKey || !o.url || !o.origin) {
          throw new ObolError('MALFORMED', 'give --request FILE, or all of --merchant-id, --public-key, --url and --origin');
        }
        registration = { merchantId: o.merchantId, publicKey: o.publicKey, url: o.url, origins: o.origin, ...(o.name ? { name: o.name } : {}) };
      }
      const answer = await postJson(`${o.operator}${OperatorPaths.adminMerchants}`, registration, adminHeaders(o));
      if (o.out) {
        await writeFile(o.out, `${JSON.stringify(answer, null, 2)}\n`);
        console.log(`merchant ${registration.merchantId} registered: ${o.out} is its registration.json`);
      } else {
        print(answer);
      }
    },
  );

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

// ── a shop's catalogue (FIG 4) ──────────────────────────────────────────────────────────────

const merchant = program.command('merchant').description('a shop: its folder and server, its catalogue of products, its sales');
addMerchantCommands(merchant);

// ── the arbiter (FIG 4 disputes) ────────────────────────────────────────────────────────────

const arbiter = program.command('arbiter').description('judge disputes over delivered digital goods');
arbiter
  .command('init')
  .description('make an arbiter key folder; prints the public key operators must trust (their `arbiters` configuration)')
  .requiredOption('--dir <dir>', 'the arbiter key folder to write')
  .requiredOption('--root-cert <file>', 'the interbank root certificate (PEM), e.g. <root dir>/root.cert.pem')
  .action(async (o: { dir: string; rootCert: string }) => {
    const made = await createArbiterKeyDir(o.dir, parseCert(await readFile(o.rootCert, 'utf8')));
    print({ dir: o.dir, publicKey: made.publicKey, kid: made.kid });
  });
arbiter
  .command('judge')
  .description('judge one evidence bundle (a wallet’s or a shop’s export) and say what was promised, delivered and signed')
  .requiredOption('--evidence <file>', 'the evidence bundle (JSON)')
  .requiredOption('--operator <url...>', 'the merchant’s operator (the trusted party that relayed K1); several allowed')
  .requiredOption('--key-dir <dir>', 'the arbiter key folder (obol arbiter init)')
  .option('--json', 'print the report as JSON')
  .action(async (o: { evidence: string; operator: string[]; keyDir: string; json?: boolean }) => {
    let evidence: unknown;
    try {
      evidence = JSON.parse(await readFile(o.evidence, 'utf8'));
    } catch (e) {
      throw new ObolError('MALFORMED', `cannot read the evidence in ${o.evidence}: ${(e as Error).message}`);
    }
    const judge = await Arbiter.fromKeyDir(o.keyDir, { operators: o.operator });
    const report = await judge.judge(evidence);
    if (o.json) print(report);
    else process.stdout.write(formatReport(report));
  });
arbiter
  .command('serve')
  .description('serve POST /v1/judge: evidence in, the report out')
  .requiredOption('--operator <url...>', 'the operators the arbiter may ask for K1')
  .requiredOption('--key-dir <dir>', 'the arbiter key folder (obol arbiter init)')
  .option('--port <port>', 'port', '7400')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--tls-cert <file>', 'serve HTTPS: the certificate chain (PEM), e.g. from `obol operator issue-tls-cert`')
  .option('--tls-key <file>', 'serve HTTPS: the private key (PEM)')
  .action(async (o: { operator: string[]; keyDir: string; port: string; host: string; tlsCert?: string; tlsKey?: string }) => {
    const judge = await Arbiter.fromKeyDir(o.keyDir, { operators: o.operator });
    const tls = tlsOption(o);
    const server = await startArbiterServer(judge, { port: Number(o.port), host: o.host, logger: true, ...(tls ? { tls } : {}) });
    console.log(`arbiter ${judge.key.kid} listening on ${server.url}`);
    const stop = async () => {
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program.parseAsync().catch((e: unknown) => {
  if (e instanceof ObolError) console.error(`obol: ${e.name} (${e.code}): ${e.message}`);
  else console.error(`obol: ${(e as Error).message}`);
  process.exit(1);
});
