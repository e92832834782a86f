import Type, { type Static } from 'typebox';
import { MAX_CIPHERTEXT_B64 } from './delivery.ts';
import { B64u, CertT, HashT, MerchantIdT, NestedSigned, OperatorIdT, PositiveMoney, ProductIdT, SeqT, TimeT, TradeHandleT } from './messages.ts';

/**
 * FIG 4 disputes: the evidence of one purchase, as either side holds it, for an arbiter (the
 * seed's NBCP). Every part that matters is signed by the side that made it — the description, the
 * encrypted product and the wrapped key by the merchant, the accept by the shopper's session key —
 * and the certificates let the arbiter tie each signature to a party through the interbank root.
 * K1 is deliberately not in it: the arbiter asks the trusted party, so neither side can bend it.
 */
export const EVIDENCE_FORMAT = 'obol.evidence.v1';

/** The opening of an accept's commitment (purchaseList.ts `PurchaseOpening`) with its salt. */
export const PurchaseOpeningT = Type.Object(
  {
    listSalt: B64u(64),
    n: SeqT,
    productId: ProductIdT,
    price: PositiveMoney,
    receivedHash: HashT,
    descriptionHash: HashT,
  },
  { additionalProperties: false },
);

export const EvidenceBundle = Type.Object(
  {
    format: Type.Literal(EVIDENCE_FORMAT),
    /** Whose copy this is: alterations are named after the side that presents it. */
    presentedBy: Type.Union([Type.Literal('shopper'), Type.Literal('merchant')]),
    /** The transaction's trade handle: what the temporary certificate and the accept name. */
    transactionId: TradeHandleT,
    n: SeqT,
    merchantId: MerchantIdT,
    /** The merchant's operator: the trusted party that relayed K1. */
    merchantOperatorId: OperatorIdT,
    description: NestedSigned('merchant.description'),
    product: NestedSigned('merchant.product'),
    /** The encrypted product as delivered, base64url. */
    ciphertext: B64u(MAX_CIPHERTEXT_B64),
    accept: NestedSigned('wallet.accept'),
    /**
     * What the accept's commitment opens to, and the transaction's list salt: revealed by the
     * presenting side to the arbiter only, which recomputes the commitment (purchaseCommitment)
     * and then ties each part of the evidence to it.
     */
    opening: PurchaseOpeningT,
    /** sign_M([K2]^K1), or null when it never came. */
    key: Type.Union([NestedSigned('merchant.key'), Type.Null()]),
    /** The merchant's certificate and the temporary certificate, as the presenting side holds them. */
    merchantCert: CertT,
    tempCert: CertT,
    /** The operator certificate(s) that issued those two, up to (not including) the interbank root. */
    operatorCerts: Type.Array(CertT, { minItems: 1, maxItems: 4 }),
    exportedAt: TimeT,
  },
  { additionalProperties: false },
);
export type EvidenceBundle = Static<typeof EvidenceBundle>;
