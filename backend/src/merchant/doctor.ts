/**
 * `obol merchant doctor --page URL`: a page checked the way a wallet will see it, before it goes
 * live, so a setup mistake is a sentence for the merchant instead of a failed purchase for a
 * shopper. It reads the page's tags as the widget does (protocol/pageTags), then asks the
 * merchant module and the operator what a wallet would ask:
 *
 * - the widget's script tag is there and the script loads;
 * - the merchant module answers where the page says (or where the script came from);
 * - the page's origin is one the operator certified for the merchant (the wallet refuses others);
 * - every `<obol-buy>` names a product of the catalogue, at the catalogue's price and currency;
 * - the operator answers, and the merchant's certificate is not about to run out.
 */
import { MerchantCertificateResponse, MerchantPaths, MerchantPublicInfo, OperatorPaths, ProductsResponse } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { checkSchema } from '@obol/protocol/messages';
import { formatAmount, parseAmount, parseDecimal } from '@obol/protocol/money';
import { checkProductId, moduleOfScript, resolveMerchant } from '@obol/protocol/pageTags';
import { describeCert, parseCert } from '@obol/protocol/pki';
import type { Static } from 'typebox';

export interface Finding {
  ok: boolean;
  /** One sentence for the merchant: what was checked, and on a failure what to change. */
  says: string;
}

/** How the doctor reads the web: text and status of a GET (the CLI uses undici). */
export type GetText = (url: string) => Promise<{ status: number; contentType: string; body: string }>;

/** Certificates running out within this long are reported. */
const EXPIRY_WARNING_MS = 14 * 86_400_000;

export async function checkPage(pageUrl: string, get: GetText, now: number): Promise<Finding[]> {
  const findings: Finding[] = [];
  const ok = (says: string) => findings.push({ ok: true, says });
  const fail = (says: string) => findings.push({ ok: false, says });

  const page = await get(pageUrl).catch((e: unknown) => ({ status: 0, contentType: '', body: String((e as Error).message) }));
  if (page.status !== 200) {
    fail(`the page ${pageUrl} could not be read (${page.status === 0 ? page.body : `HTTP ${page.status}`})`);
    return findings;
  }
  const origin = new URL(pageUrl).origin;
  const tags = readTags(page.body);
  const script = tags.find((t) => t.name === 'script' && /obol-widget/.test(t.attrs.src ?? ''));
  if (!script) {
    fail('the page has no widget script: add <script src="https://<your merchant server>/obol/obol-widget.js" defer></script>');
    return findings;
  }
  const scriptUrl = new URL(script.attrs.src ?? '', pageUrl).href;
  const scriptAnswer = await get(scriptUrl).catch(() => ({ status: 0, contentType: '', body: '' }));
  if (scriptAnswer.status === 200 && /javascript/.test(scriptAnswer.contentType)) ok(`the widget script loads from ${scriptUrl}`);
  else fail(`the widget script ${scriptUrl} does not load (${scriptAnswer.status === 0 ? 'no answer' : `HTTP ${scriptAnswer.status} ${scriptAnswer.contentType}`})`);

  let moduleUrl: string;
  try {
    moduleUrl = resolveMerchant(null, script.attrs['data-merchant'] ?? moduleOfScript(scriptUrl), pageUrl).replace(/\/+$/, '');
  } catch (e) {
    fail(`the merchant module's address: ${(e as Error).message}`);
    return findings;
  }
  const info = await getJson(get, `${moduleUrl}${MerchantPaths.merchant}`, MerchantPublicInfo);
  if (info instanceof Error) {
    fail(`the merchant module is not at ${moduleUrl} (${info.message}): fix data-merchant, or the script's address`);
    return findings;
  }
  ok(`the merchant module at ${moduleUrl} is ${info.merchantId} ("${info.name}"), paid through ${info.operatorId} in ${info.currency}`);

  const certified = await getJson(
    get,
    `${info.operatorUrl}${OperatorPaths.merchantCertificate.replace(':operatorId', encodeURIComponent(info.operatorId)).replace(':merchantId', encodeURIComponent(info.merchantId))}`,
    MerchantCertificateResponse,
  );
  if (certified instanceof Error) {
    fail(`the operator at ${info.operatorUrl} does not vouch for ${info.merchantId} (${certified.message}): is the shop registered there?`);
  } else {
    if (certified.origins.includes(origin)) ok(`this page's origin ${origin} is certified for ${info.merchantId}`);
    else fail(`this page's origin ${origin} is not certified for ${info.merchantId} (certified: ${certified.origins.join(', ')}): wallets will refuse to pay here; have the operator register this origin`);
    try {
      const notAfter = describeCert(parseCert(certified.merchantCert)).notAfter;
      if (notAfter <= now) fail(`the merchant's certificate ran out on ${new Date(notAfter).toISOString()}: ask the operator for a new one`);
      else if (notAfter - now < EXPIRY_WARNING_MS) fail(`the merchant's certificate runs out on ${new Date(notAfter).toISOString()}: ask the operator for a new one soon`);
      else ok(`the merchant's certificate is valid until ${new Date(notAfter).toISOString().slice(0, 10)}`);
    } catch (e) {
      fail(`the merchant's certificate cannot be read: ${(e as Error).message}`);
    }
  }

  const catalogue = await getJson(get, `${moduleUrl}${MerchantPaths.products}`, ProductsResponse);
  const buttons = tags.filter((t) => t.name === 'obol-buy');
  if (buttons.length === 0) fail('the page has no <obol-buy> element: nothing on it can be bought');
  if (catalogue instanceof Error) {
    fail(`the catalogue at ${moduleUrl}${MerchantPaths.products} cannot be read (${catalogue.message})`);
  } else {
    const byId = new Map(catalogue.products.map((p) => [p.productId, p]));
    for (const b of buttons) findings.push(checkButton(b.attrs, byId, info.currency));
  }
  return findings;
}

function checkButton(attrs: Record<string, string>, byId: Map<string, Static<typeof ProductsResponse>['products'][number]>, shopCurrency: string): Finding {
  const named = attrs.product ?? '';
  let productId: string;
  try {
    productId = checkProductId(named);
  } catch (e) {
    return { ok: false, says: `<obol-buy product="${named}">: ${(e as Error).message}` };
  }
  const listed = byId.get(productId);
  if (!listed) {
    const known = [...byId.keys()].slice(0, 10).join(', ') || 'none';
    return { ok: false, says: `<obol-buy product="${productId}">: no such product in the catalogue (it has: ${known})` };
  }
  const currency = attrs.currency ?? '';
  if (currency !== shopCurrency) {
    return { ok: false, says: `<obol-buy product="${productId}">: currency="${currency}", but the shop sells in ${shopCurrency}` };
  }
  let pagePrice: string;
  try {
    pagePrice = formatAmount(parseDecimal(currency, attrs.price ?? ''));
  } catch (e) {
    return { ok: false, says: `<obol-buy product="${productId}">: price="${attrs.price ?? ''}" is not a price (${(e as Error).message})` };
  }
  const catalogued = formatAmount(parseAmount(listed.price));
  if (pagePrice !== catalogued) {
    return { ok: false, says: `<obol-buy product="${productId}">: the page says ${pagePrice}, the catalogue ${catalogued}: a wallet's order at the page's price would be refused` };
  }
  return { ok: true, says: `<obol-buy product="${productId}">: "${listed.title}" at ${catalogued}, as in the catalogue` };
}

async function getJson<T extends Parameters<typeof checkSchema>[0]>(get: GetText, url: string, schema: T): Promise<Static<T> | Error> {
  try {
    const answer = await get(url);
    if (answer.status !== 200) return new Error(`HTTP ${answer.status}`);
    const json: unknown = JSON.parse(answer.body);
    checkSchema(schema, json, url);
    return json as Static<T>;
  } catch (e) {
    return e instanceof ObolError || e instanceof Error ? e : new Error(String(e));
  }
}

interface Tag {
  name: string;
  attrs: Record<string, string>;
}

/**
 * The start tags of `<script>` and `<obol-buy>` elements with their attributes (names lower
 * case, values with the common character references decoded). Enough for checking a page's Obol
 * tags; not a general HTML parser.
 */
export function readTags(html: string): Tag[] {
  const tags: Tag[] = [];
  for (const m of html.matchAll(/<(script|obol-buy)\b([^>]*)>/gi)) {
    const attrs: Record<string, string> = {};
    for (const a of (m[2] ?? '').matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
      attrs[(a[1] ?? '').toLowerCase()] = decodeEntities(a[2] ?? a[3] ?? a[4] ?? '');
    }
    tags.push({ name: (m[1] ?? '').toLowerCase(), attrs });
  }
  return tags;
}

function decodeEntities(s: string): string {
  return s.replace(/&(amp|quot|apos|lt|gt|#39|#34);/g, (_all, e: string) => ({ amp: '&', quot: '"', apos: "'", lt: '<', gt: '>', '#39': "'", '#34': '"' })[e] ?? '');
}
