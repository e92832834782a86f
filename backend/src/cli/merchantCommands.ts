/**
 * `obol merchant init | serve | sales | doctor | add-product | status | sessions | payouts |
 * refund`: a merchant's own commands, over its folder (setup.ts); the operator's `obol` and the
 * merchant package's `obol` (merchant/) both have them. None of them needs the operator's admin
 * token: the shop is known by its key (status, sessions and payouts ask the operator with a
 * request signed by it) and its own administration token (sales, add-product and refund ask the
 * running shop).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { MerchantPaths, type RefundResponse } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import type { Command } from 'commander';
import { getJson, postJson } from '../http/client.ts';
import { mediaTypeOf } from '../http/mediaTypes.ts';
import { randomId } from '@obol/protocol/webcrypto';
import type { SalesReport } from '../merchant/sales.ts';
import { MODULE_PATH, REGISTRATION_FILE, initMerchant, loadShopFolder } from '../merchant/setup.ts';
import { startMerchantServer } from '../merchant/standalone.ts';
import { type StatementQuery, formatDeposits, formatPayouts, formatStatus, shopStatement } from '../merchant/statement.ts';
import { type GetText, checkPage } from '../merchant/doctor.ts';
import { request } from 'undici';

export async function readJsonFile(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ObolError('MALFORMED', `cannot read ${file}: ${e.code ?? e.message}`);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new ObolError('MALFORMED', `${file} is not JSON`);
  }
}

export function addMerchantCommands(merchant: Command): void {
  merchant
    .command('init')
    .description('make a shop folder: its key, its configuration and a signed registration request for its operator')
    .requiredOption('--dir <dir>', 'the shop folder to make')
    .requiredOption('--merchant-id <id>', 'the shop’s id at its operator, e.g. my-blog')
    .requiredOption('--name <name>', 'the name shoppers see')
    .requiredOption('--operator <url>', 'the operator’s base URL')
    .requiredOption('--operator-id <id>', 'the operator’s id, e.g. op-eur')
    .requiredOption('--currency <code>', 'the shop’s currency (its operator’s), e.g. EUR')
    .requiredOption('--public-url <url>', 'where browsers will reach this merchant server, e.g. https://pay.blog.example')
    .option('--origin <origin...>', 'the origins of the shop’s pages (default: the public URL’s)')
    .option('--port <port>', 'the port `obol merchant serve` listens on (default: the public URL’s, else 7300)')
    .action(
      async (o: {
        dir: string;
        merchantId: string;
        name: string;
        operator: string;
        operatorId: string;
        currency: string;
        publicUrl: string;
        origin?: string[];
        port?: string;
      }) => {
        const port = o.port === undefined ? undefined : Number(o.port);
        if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new ObolError('MALFORMED', `--port ${o.port} is not a port`);
        const made = await initMerchant({
          dir: o.dir,
          merchantId: o.merchantId,
          name: o.name,
          currency: o.currency,
          operatorId: o.operatorId,
          operatorUrl: o.operator,
          publicUrl: o.publicUrl,
          ...(o.origin ? { origins: o.origin } : {}),
          ...(port !== undefined ? { port } : {}),
          now: Date.now(),
        });
        console.log(`shop ${o.merchantId}: key, data key and configuration written to ${o.dir}
Next:
  1. send ${made.requestFile} to your operator; they run
       obol register-merchant --operator ${o.operator} --request registration-request.json --out ${REGISTRATION_FILE}
     and give you ${REGISTRATION_FILE}: put it in ${o.dir}
  2. obol merchant serve --config ${made.configFile}
  3. on your pages: <script src="${o.publicUrl.replace(/\/+$/, '')}${MODULE_PATH}${MerchantPaths.widget}" defer></script>
     and <obol-buy product="…" price="…" currency="${o.currency}"></obol-buy> for each thing you sell
  4. add products: obol merchant add-product --config ${made.configFile} --id … --title … --price ${o.currency}:0.50 --file …`);
      },
    );

  merchant
    .command('serve')
    .description('run the shop’s merchant server (the module, the widget script, and the shop’s pages if configured)')
    .requiredOption('--config <file>', 'the shop’s shop.json (or its folder)')
    .action(async (o: { config: string }) => {
      const shop = await loadShopFolder(o.config);
      const server = await startMerchantServer(shop);
      console.log(`shop ${shop.config.merchantId} serving at ${server.url} (module at ${MODULE_PATH}, public URL ${shop.config.publicUrl})`);
      const stop = async () => {
        await server.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  merchant
    .command('doctor')
    .description('check a page before it goes live: the widget tag, the module, the certified origin, each product’s price, the operator')
    .requiredOption('--page <url>', 'the page to check, e.g. https://my-blog.example/posts/field-notes')
    .action(async (o: { page: string }) => {
      const findings = await checkPage(o.page, getText, Date.now());
      for (const f of findings) console.log(`${f.ok ? '✓' : '✗'} ${f.says}`);
      const failed = findings.filter((f) => !f.ok).length;
      console.log(failed === 0 ? 'All good: wallets can buy on this page.' : `${failed} problem${failed === 1 ? '' : 's'} to fix before going live.`);
      if (failed > 0) process.exitCode = 1;
    });

  merchant
    .command('sales')
    .description('the shop’s sales by product and by day, and its trading sessions (from the running shop)')
    .requiredOption('--config <file>', 'the shop’s shop.json (or its folder)')
    .option('--days <n>', 'how many days with sales to list', '30')
    .option('--json', 'print the report as JSON')
    .action(async (o: { config: string; days: string; json?: boolean }) => {
      const { config } = await loadShopFolder(o.config);
      const report = (await getJson(`${shopModuleUrl(config)}${MerchantPaths.adminSales}?days=${encodeURIComponent(o.days)}`, {
        headers: { authorization: `Bearer ${config.adminToken}` },
      })) as SalesReport;
      console.log(o.json ? JSON.stringify(report, null, 2) : formatSales(report));
    });

  merchant
    .command('add-product')
    .description('add a product: encrypted once with its own key and signed once by the shop (FIG 4)')
    .option('--config <file>', 'the shop’s shop.json (or its folder): its server and admin token')
    .option('--shop <url>', 'without --config: where the shop mounts the merchant module, e.g. http://127.0.0.1:7300/obol')
    .option('--admin-token <token>', 'without --config: the shop admin token (or OBOL_SHOP_ADMIN_TOKEN)')
    .requiredOption('--id <productId>', 'product id, e.g. field-guide-2026')
    .requiredOption('--title <title>')
    .requiredOption('--price <money>', 'in the shop’s currency, e.g. EUR:0.50')
    .option('--description <text>', 'what the shopper is promised (signed)', '')
    .option('--file <path>', 'the product’s content: a file')
    .option('--text <text>', 'the product’s content: a text')
    .option('--content-type <type>', 'media type (default: from the file name, or text/plain for --text)')
    .option('--replace', 'replace a product of the same id that differs (new key, new signatures)')
    .action(
      async (o: {
        config?: string;
        shop?: string;
        adminToken?: string;
        id: string;
        title: string;
        price: string;
        description: string;
        file?: string;
        text?: string;
        contentType?: string;
        replace?: boolean;
      }) => {
        if ((o.file === undefined) === (o.text === undefined)) throw new ObolError('MALFORMED', 'give the content with exactly one of --file or --text');
        const shopConfig = o.config ? (await loadShopFolder(o.config)).config : undefined;
        const shop = shopConfig ? shopModuleUrl(shopConfig) : o.shop;
        if (!shop) throw new ObolError('MALFORMED', 'give --config (the shop’s shop.json) or --shop');
        const token = shopConfig?.adminToken ?? o.adminToken ?? process.env.OBOL_SHOP_ADMIN_TOKEN;
        if (!token) throw new ObolError('UNAUTHORIZED', 'give --admin-token or set OBOL_SHOP_ADMIN_TOKEN');
        let content: Uint8Array;
        if (o.file !== undefined) {
          try {
            content = new Uint8Array(await readFile(o.file));
          } catch (e) {
            throw new ObolError('MALFORMED', `cannot read ${o.file}: ${(e as Error).message}`);
          }
        } else {
          content = utf8.encode(o.text ?? '');
        }
        const contentType =
          o.contentType ?? (o.file !== undefined ? (mediaTypeOf(basename(o.file)) ?? 'application/octet-stream') : 'text/plain; charset=utf-8');
        const added = await postJson(
            `${shop.replace(/\/+$/, '')}${MerchantPaths.adminProducts}`,
            {
              productId: o.id,
              title: o.title,
              description: o.description,
              price: o.price,
              contentType,
              content: toBase64Url(content),
              ...(o.replace ? { replace: true } : {}),
            },
            { headers: { authorization: `Bearer ${token}` }, timeoutMs: 120_000 },
        );
        console.log(JSON.stringify(added, null, 2));
      },
    );
  const statementCommand = (name: string, description: string, format: typeof formatStatus, withRange: boolean) => {
    const command = merchant
      .command(name)
      .description(description)
      .requiredOption('--config <file>', 'the shop’s shop.json (or its folder)')
      .option('--json', 'print the operator’s statement as JSON');
    if (withRange) {
      command.option('--since <date>', 'deposits opened on or after this day or time (ISO 8601, UTC)').option('--limit <n>', 'at most this many deposits (1–1000)', '100');
    }
    command.action(async (o: { config: string; json?: boolean; since?: string; limit?: string }) => {
      const statement = await shopStatement(await loadShopFolder(o.config), statementQuery(o));
      console.log(o.json ? JSON.stringify(statement, null, 2) : format(statement));
    });
  };
  statementCommand('status', 'the shop’s balance at its operator and its open deposits (asked with the shop’s own key)', formatStatus, false);
  statementCommand('sessions', 'the shop’s deposits at its operator, one per trading session, and how each cleared (asked with the shop’s own key)', formatDeposits, true);
  statementCommand('payouts', 'what the operator owes the shop and the cleared deposits behind it (asked with the shop’s own key)', formatPayouts, true);
  merchant
    .command('refund')
    .description('refund (part of) a cleared trading session through the shop’s operator; the shopper is credited in her currency')
    .requiredOption('--config <file>', 'the shop’s shop.json (or its folder)')
    .requiredOption('--transaction <handle>', 'the trading session as the shop knows it (t-…, see `obol merchant sales`)')
    .requiredOption('--amount <amount>', 'how much to give back, in the shop’s currency, e.g. EUR:0.03')
    .option('--refund-id <id>', 'the refund’s id: give the same id again to retry a refund safely (default: a new one, printed)')
    .option('--json', 'print the operator’s answer as JSON')
    .action(async (o: { config: string; transaction: string; amount: string; refundId?: string; json?: boolean }) => {
      const { config } = await loadShopFolder(o.config);
      const refundId = o.refundId ?? randomId();
      // Printed first: if the answer is lost, the same command with this id retries the same refund.
      if (!o.json) console.log(`Refund ${refundId} of ${o.amount} for ${o.transaction}…`);
      const answer = (await postJson(
        `${shopModuleUrl(config)}${MerchantPaths.adminRefunds}`,
        { transactionId: o.transaction, amount: o.amount, refundId },
        { headers: { authorization: `Bearer ${config.adminToken}` } },
      )) as RefundResponse;
      console.log(
        o.json
          ? JSON.stringify(answer, null, 2)
          : answer.line
            ? `Refunded ${answer.amount} on purchase ${answer.n} before clearing (${answer.refundedTotal} in all): the open session's record reports that much less, and the shopper's operator returns it with the unused deposit.`
            : `Refunded ${answer.amount} (refund ${answer.n} of this session, ${answer.refundedTotal} refunded in all). The shopper's operator credits her at the session's rate.`,
      );
    });
}

function statementQuery(o: { since?: string; limit?: string }): StatementQuery {
  const query: StatementQuery = {};
  if (o.since !== undefined) {
    const since = Date.parse(o.since);
    if (!Number.isFinite(since) || since < 0) throw new ObolError('MALFORMED', `--since ${o.since} is not a date (e.g. 2026-11-23)`);
    query.since = since;
  }
  if (o.limit !== undefined) {
    const limit = Number(o.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ObolError('MALFORMED', `--limit ${o.limit} is not a whole number from 1 to 1000`);
    query.limit = limit;
  }
  return query;
}

/** A GET for the doctor: status, media type and text (at most 2 MB), following no redirects. */
const getText: GetText = async (url) => {
  const res = await request(url, { method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > 2 * 1024 * 1024) {
      res.body.destroy();
      throw new ObolError('MALFORMED', `${url} is larger than 2 MB`);
    }
    chunks.push(chunk as Buffer);
  }
  const type = res.headers['content-type'];
  return { status: res.statusCode, contentType: Array.isArray(type) ? (type[0] ?? '') : (type ?? ''), body: Buffer.concat(chunks).toString('utf8') };
};

/** Where a command on the shop's own machine reaches its server: the address it listens on. */
export function shopModuleUrl(config: { port: number; host?: string; tls?: unknown; publicUrl: string }): string {
  if (config.port === 0) return `${config.publicUrl}${MODULE_PATH}`;
  return `${config.tls ? 'https' : 'http'}://${config.host ?? '127.0.0.1'}:${config.port}${MODULE_PATH}`;
}

function formatSales(r: SalesReport): string {
  const table = (title: string, rows: { key: string; purchases: number; amount: string }[]) =>
    rows.length === 0
      ? `${title}: none yet`
      : [title, ...rows.map((l) => `  ${l.key.padEnd(32)} ${String(l.purchases).padStart(6)}  ${l.amount}`)].join('\n');
  const sessions = r.sessions.map((s) => `  ${s.state.padEnd(10)} ${String(s.count).padStart(6)}  deposits ${s.deposits}, spent ${s.spent}`);
  return [
    `Sold: ${r.purchases} purchase${r.purchases === 1 ? '' : 's'}, ${r.total}`,
    table('By product:', r.byProduct),
    table('By day (UTC):', r.byDay),
    sessions.length === 0 ? 'Trading sessions: none yet' : ['Trading sessions:', ...sessions].join('\n'),
  ].join('\n');
}
