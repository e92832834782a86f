import { MerchantCertificateResponse, OperatorPaths } from '../api.ts';
import { ObolError } from '../errors.ts';
import { checkSchema } from '../messages.ts';
import { formatAmount, parseAmount } from '../money.ts';
import { parseCert, verifyChain } from '../pki.ts';
import { verifyMessage } from '../signed.ts';
import { merchantInfo } from './account.ts';
import { type AgentCore, baseUrl } from './core.ts';
import { chosenDescription } from './purchase.ts';

/**
 * What a confirmation window may show about a purchase, all of it vouched for before the window
 * opens: the merchant as the shopper's own operator certifies it, and the product as the merchant
 * signed it — this product id (UNKNOWN_PRODUCT when the merchant does not sell it), at this price
 * (PRODUCT_MISMATCH otherwise), signed with the key of that certificate. A page cannot name a
 * product the merchant does not sell, nor state a price of its own, nor put its words in the title.
 */
export interface VerifiedOffer {
  merchantId: string;
  /** The shop's own words about itself (not vouched for). */
  merchantName: string;
  operatorId: string;
  currency: string;
  /** The web origins the merchant's certificate names. */
  origins: string[];
  productId: string;
  /** Merchant-signed. */
  title: string;
  /** Merchant-signed. */
  description: string;
  /** Merchant-signed, wire form in the merchant's currency. */
  price: string;
}

/** A description asked for this long ago at most is the current one for a window (the click's own prefetch). */
const OFFER_DESCRIPTION_AGE_MS = 10_000;

export async function verifiedOffer(core: AgentCore, merchantUrlText: string, productId: string, priceText: string): Promise<VerifiedOffer> {
  const merchantUrl = baseUrl(merchantUrlText);
  const price = formatAmount(parseAmount(priceText));
  const info = await merchantInfo(core, merchantUrl);
  const account = await core.account();
  // The merchant's certificate as our own operator re-issues it (as `verifiedMerchant` does): the
  // key the description must be signed with.
  const path = OperatorPaths.merchantCertificate.replace(':operatorId', encodeURIComponent(info.operatorId)).replace(':merchantId', encodeURIComponent(info.merchantId));
  const body = await core.http.get(core.operatorUrl(account, path));
  checkSchema(MerchantCertificateResponse, body, 'merchant certificate');
  const cert = await verifyChain(body.merchantCert, { trustedIssuers: [parseCert(account.operatorCert)] }, { now: core.now(), expectKind: 'merchant' }, core.crypto);
  if (cert.merchantId !== info.merchantId) {
    throw new ObolError('MERCHANT_NOT_TRUSTED', `the certificate names ${cert.merchantId}, the shop says ${info.merchantId}`);
  }
  // Current for the window (fetched for this very click, or afresh) and kept: the purchase after
  // her click orders against this very description (chosenDescription) without fetching it again.
  const { description: signed } = await chosenDescription(core, merchantUrl, productId, price, { maxAgeMs: OFFER_DESCRIPTION_AGE_MS });
  try {
    await verifyMessage(signed, 'merchant.description', await core.certResolver(body.merchantCert), core.crypto);
  } catch (e) {
    throw new ObolError('BAD_SIGNATURE', `the description of ${productId} is not signed by merchant ${info.merchantId} (${e instanceof Error ? e.message : String(e)})`);
  }
  const d = signed.body;
  return {
    merchantId: info.merchantId,
    merchantName: info.name,
    operatorId: info.operatorId,
    currency: info.currency,
    origins: cert.origins ?? [],
    productId: d.productId,
    title: d.title,
    description: d.description,
    price: formatAmount(parseAmount(d.price)),
  };
}
