/**
 * The merchant's prepared catalogue (FIG 4), in the merchant's own database: every product
 * encrypted once with its own K2 and signed once (`merchant.product`, `merchant.description`) when
 * it is added, never per purchase. See migrations/002_products.sql.
 */
import type { ProductListing, ProductView } from '@obol/protocol/api';
import type { Clock } from '@obol/protocol/clock';
import { BoundedCache } from '@obol/protocol/boundedCache';
import { type PreparedProduct, type ProductInput, checkProductInput, hashB64, importProductKeyForWrap, prepareProduct } from '@obol/protocol/delivery';
import { ObolError } from '@obol/protocol/errors';
import type { KeyHandle } from '@obol/protocol/keys';
import { ProductIdT, checkSchema } from '@obol/protocol/messages';
import { parseAmount } from '@obol/protocol/money';
import { type Signed, signMessage } from '@obol/protocol/signed';
import type { WebCrypto } from '@obol/protocol/webcrypto';
import { type Db, type Queryable, sqlState } from '../store/db.ts';
import type { SealKeys } from '../store/sealedColumn.ts';

export type { ProductInput };

/** A current product, as orders need it. */
export interface StoredProduct {
  productId: string;
  title: string;
  description: string;
  price: string;
  amount: bigint;
  contentType: string;
  contentHash: string;
  size: number;
  ciphertextHash: string;
  descriptionHash: string;
  signedProduct: Signed<'merchant.product'>;
  signedDescription: Signed<'merchant.description'>;
  createdAt: number;
}

interface ProductRow {
  ciphertext_hash: string;
  product_id: string;
  title: string;
  description: string;
  price: string;
  amount: bigint;
  content_type: string;
  content_hash: string;
  size: number;
  description_hash: string;
  signed_product: Signed<'merchant.product'>;
  signed_description: Signed<'merchant.description'>;
  created_at: bigint;
}

const COLUMNS = `ciphertext_hash, product_id, title, description, price, amount, content_type, content_hash, size,
  description_hash, signed_product, signed_description, created_at`;

function stored(r: ProductRow): StoredProduct {
  return {
    productId: r.product_id,
    title: r.title,
    description: r.description,
    price: r.price,
    amount: BigInt(r.amount),
    contentType: r.content_type,
    contentHash: r.content_hash,
    size: Number(r.size),
    ciphertextHash: r.ciphertext_hash,
    descriptionHash: r.description_hash,
    signedProduct: r.signed_product,
    signedDescription: r.signed_description,
    createdAt: Number(r.created_at),
  };
}

export interface AddProductOptions {
  /** Replace a current product of the same id that differs; without it that is a CONFLICT. */
  replace?: boolean;
}

/**
 * A current version as an order needs it, made ready once per process: its signed messages, its
 * ciphertext already in its wire form, and its K2 imported for wrapping.
 */
export interface ReadyVersion {
  product: StoredProduct;
  /** The ciphertext, base64url (as the delivery carries it). */
  ciphertext: string;
}

/** Where a version's K2 is sealed: the AAD names this column and the version's ciphertext hash. */
export const K2_COLUMN = 'merchant_products.k2';

export class ProductCatalogue {
  /**
   * Versions made ready, keyed by ciphertext hash and the signatures of its two messages: a
   * version's content never changes under its hash, and signing it again (a new key, perhaps by
   * another process on the same database) changes the signatures, so a hit is never stale.
   * Which version is current is still asked of the database on every order (one small row).
   */
  private readonly ready = new BoundedCache<string, ReadyVersion>(512);
  /** K2 of each version, imported for wrapping, by ciphertext hash (K2 never changes under it). */
  private readonly productKeys = new BoundedCache<string, Promise<CryptoKey>>(1024);
  /**
   * The version of each product this process last found current, by product id, so an order does
   * not ask the database which version is current. It may be stale when another process of the
   * shop changed the product: an order written against it checks in the same statement that the
   * version is still current with these signatures (`currentVersionCheck`), and when it is not
   * the order asks the database afresh (`currentReady`). Changes made here drop the entry at once.
   */
  private readonly knownCurrent = new BoundedCache<string, ReadyVersion>(512);

  constructor(
    private readonly db: Db,
    private readonly key: KeyHandle,
    private readonly currency: string,
    private readonly clock: Clock,
    private readonly crypto: WebCrypto,
    private readonly sealKeys: SealKeys,
  ) {}

  /**
   * Adds a product: checks it (catalogue errors, nothing stored on bad input), encrypts it with a
   * new K2 and signs its two messages, and stores it — unless the same product (same terms, same
   * content) is already current, which changes nothing ('unchanged').
   */
  async add(input: ProductInput, opts: AddProductOptions = {}): Promise<ProductView> {
    try {
      return await this.tryAdd(input, opts);
    } catch (e) {
      // Two processes added the same new product at once: the loser looks again (and finds it).
      if (sqlState(e) !== '23505') throw e;
      return this.tryAdd(input, opts);
    }
  }

  private async tryAdd(input: ProductInput, opts: AddProductOptions): Promise<ProductView> {
    checkSchema(ProductIdT, input.productId, 'productId');
    checkProductInput(input);
    const price = parseAmount(input.price);
    if (price.currency !== this.currency) {
      throw new ObolError('CURRENCY_MISMATCH', `${input.productId} is priced in ${price.currency}; this merchant sells in ${this.currency}`);
    }
    const contentHash = await hashB64(input.content, this.crypto);
    const existing = await this.current(input.productId);
    if (existing && sameTerms(existing, input, contentHash)) return view(existing, 'unchanged');
    if (existing && !opts.replace) {
      throw new ObolError('CONFLICT', `product ${input.productId} exists with other terms or content; add it with replace to make a new version`);
    }
    // Everything is checked and made before the database is touched.
    const prepared = await prepareProduct(input, this.key.signer, this.crypto);
    const now = this.clock.now();
    const row = await this.db.transaction(
      async (tx) => {
        const [current] = await tx.query<ProductRow>(`SELECT ${COLUMNS} FROM merchant_products WHERE product_id = $1 AND current FOR UPDATE`, [
          input.productId,
        ]);
        if (current && sameTerms(stored(current), input, contentHash)) return { row: current, result: 'unchanged' as const };
        if (current && !opts.replace) throw new ObolError('CONFLICT', `product ${input.productId} was added meanwhile with other terms or content`);
        if (current) await tx.query('UPDATE merchant_products SET current = false WHERE ciphertext_hash = $1', [current.ciphertext_hash]);
        return { row: await insert(tx, this.sealKeys, input, price.value, prepared, now), result: current ? ('replaced' as const) : ('added' as const) };
      },
      { isolation: 'read committed' },
    );
    // After the commit: an order that looked meanwhile may have kept the version it replaced.
    if (row.result !== 'unchanged') this.knownCurrent.delete(input.productId);
    return view(stored(row.row), row.result);
  }

  /**
   * Brings the catalogue in line with a shop's own product list (e.g. `memoryCatalogue`): a product
   * that is new or differs is (re)prepared; one that is already current as it is, is left alone —
   * so a restart prepares nothing twice. Products not in the list stay (retire them explicitly).
   */
  async sync(products: Iterable<ProductInput>): Promise<ProductView[]> {
    const out: ProductView[] = [];
    for (const p of products) out.push(await this.add(p, { replace: true }));
    return out;
  }

  /**
   * Signs again, with the merchant's current key, every stored version whose two messages were
   * signed by another key: the shop's key was replaced (a rotation, or a shop that starts with a
   * new key on its old database). Only the signatures change — the bodies, and so the description
   * and ciphertext hashes an accept names, stay as they are — and without this every product
   * prepared under the old key would be refused by wallets ("not signed by merchant …") until it
   * was added again by hand. Returns how many versions were signed again.
   */
  async signAgainWithCurrentKey(): Promise<number> {
    const kid = this.key.kid;
    const rows = await this.db.query<Pick<ProductRow, 'ciphertext_hash' | 'signed_product' | 'signed_description'>>(
      `SELECT ciphertext_hash, signed_product, signed_description FROM merchant_products
        WHERE signed_product->>'kid' <> $1 OR signed_description->>'kid' <> $1`,
      [kid],
    );
    for (const r of rows) {
      const product = await signMessage('merchant.product', r.signed_product.body, this.key.signer);
      const description = await signMessage('merchant.description', r.signed_description.body, this.key.signer);
      await this.db.query(
        'UPDATE merchant_products SET signed_product = $2::text::jsonb, signed_description = $3::text::jsonb WHERE ciphertext_hash = $1',
        [r.ciphertext_hash, JSON.stringify(product), JSON.stringify(description)],
      );
    }
    if (rows.length > 0) {
      this.ready.clear();
      this.knownCurrent.clear();
    }
    return rows.length;
  }

  /**
   * The current version of `productId`, ready to deliver: one small row from `q` (which version is
   * current, and its signatures), the rest from the cache or, the first time, from the database.
   */
  async currentReady(productId: string, q: Queryable = this.db): Promise<ReadyVersion | undefined> {
    const [r] = await q.query<{ ciphertext_hash: string; product_sig: string; description_sig: string }>(
      `SELECT ciphertext_hash, signed_product->>'sig' AS product_sig, signed_description->>'sig' AS description_sig
         FROM merchant_products WHERE product_id = $1 AND current`,
      [productId],
    );
    if (!r) {
      this.knownCurrent.delete(productId);
      return undefined;
    }
    const key = `${r.ciphertext_hash}|${r.product_sig}|${r.description_sig}`;
    const kept = this.ready.get(key);
    if (kept) {
      this.knownCurrent.set(productId, kept);
      return kept;
    }
    const [row] = await q.query<ProductRow & { ciphertext: Uint8Array }>(`SELECT ${COLUMNS}, ciphertext FROM merchant_products WHERE ciphertext_hash = $1`, [
      r.ciphertext_hash,
    ]);
    if (!row) return undefined;
    const version = { product: stored(row), ciphertext: Buffer.from(row.ciphertext).toString('base64url') };
    // Kept under what it says, not what was asked: a re-signing between the two reads is not cached as the older one.
    if (version.product.signedProduct.sig === r.product_sig && version.product.signedDescription.sig === r.description_sig) {
      this.ready.set(key, version);
      this.knownCurrent.set(productId, version);
    }
    return version;
  }

  /**
   * The version of `productId` this process last found current (no statement), or the database's
   * answer the first time. Only for a write that re-checks it (`currentVersionCheck`): it may be
   * stale when another process changed the product; then ask `currentReady`.
   */
  async lastKnownCurrent(productId: string): Promise<ReadyVersion | undefined> {
    return this.knownCurrent.get(productId) ?? this.currentReady(productId);
  }

  /** K2 of a delivered version, imported for wrapping: unsealed and imported once per version. */
  productKey(q: Queryable, ciphertextHash: string): Promise<CryptoKey> {
    let key = this.productKeys.get(ciphertextHash);
    if (!key) {
      key = productKeyIn(q, this.sealKeys, ciphertextHash).then((k2) => importProductKeyForWrap(k2, this.crypto));
      this.productKeys.set(ciphertextHash, key);
      key.catch(() => this.productKeys.delete(ciphertextHash));
    }
    return key;
  }

  async current(productId: string): Promise<StoredProduct | undefined> {
    const [r] = await this.db.query<ProductRow>(`SELECT ${COLUMNS} FROM merchant_products WHERE product_id = $1 AND current`, [productId]);
    return r && stored(r);
  }

  async list(): Promise<StoredProduct[]> {
    const rows = await this.db.query<ProductRow>(`SELECT ${COLUMNS} FROM merchant_products WHERE current ORDER BY created_at, product_id`);
    return rows.map(stored);
  }

  /** A prepared version by its ciphertext hash, current or retired, with its ciphertext. */
  async version(ciphertextHash: string): Promise<(StoredProduct & { ciphertext: Uint8Array }) | undefined> {
    const [r] = await this.db.query<ProductRow & { ciphertext: Uint8Array }>(
      `SELECT ${COLUMNS}, ciphertext FROM merchant_products WHERE ciphertext_hash = $1`,
      [ciphertextHash],
    );
    return r && { ...stored(r), ciphertext: r.ciphertext };
  }

  /** Retire a product: it is no longer listed or sold (deliveries already made can still be accepted). */
  async retire(productId: string): Promise<boolean> {
    const rows = await this.db.query('UPDATE merchant_products SET current = false WHERE product_id = $1 AND current RETURNING product_id', [productId]);
    this.knownCurrent.delete(productId);
    return rows.length > 0;
  }
}

/**
 * A condition for a write that relies on `lastKnownCurrent`: the version `$ciphertextHash` is still
 * the current one of its product, with the signatures `$productSig` and `$descriptionSig` (the
 * placeholders are the caller's parameter numbers).
 */
export function currentVersionCheck(ciphertextHash: string, productSig: string, descriptionSig: string): string {
  return `EXISTS (SELECT 1 FROM merchant_products WHERE ciphertext_hash = ${ciphertextHash} AND current
                    AND signed_product->>'sig' = ${productSig} AND signed_description->>'sig' = ${descriptionSig})`;
}

/** K2 of the version that was delivered (inside the accept's transaction). */
export async function productKeyIn(tx: Queryable, sealKeys: SealKeys, ciphertextHash: string): Promise<string> {
  const [r] = await tx.query<{ k2_sealed: string }>('SELECT k2_sealed FROM merchant_products WHERE ciphertext_hash = $1', [ciphertextHash]);
  if (!r) throw new ObolError('INTERNAL', 'the delivered product version is missing from the catalogue');
  return sealKeys.open(r.k2_sealed, { column: K2_COLUMN, rowId: ciphertextHash });
}

export function listingOf(p: StoredProduct): ProductListing {
  return {
    productId: p.productId,
    title: p.title,
    description: p.description,
    price: p.price,
    contentType: p.contentType,
    signedDescription: p.signedDescription,
  };
}

function sameTerms(p: StoredProduct, input: ProductInput, contentHash: string): boolean {
  return (
    p.title === input.title &&
    p.description === input.description &&
    p.price === input.price &&
    p.contentType === input.contentType &&
    p.contentHash === contentHash
  );
}

function view(p: StoredProduct, result: ProductView['result']): ProductView {
  return {
    productId: p.productId,
    title: p.title,
    price: p.price,
    contentType: p.contentType,
    size: p.size,
    contentHash: p.contentHash,
    ciphertextHash: p.ciphertextHash,
    descriptionHash: p.descriptionHash,
    result,
    createdAt: p.createdAt,
  };
}

async function insert(tx: Queryable, sealKeys: SealKeys, input: ProductInput, amount: bigint, prepared: PreparedProduct, now: number): Promise<ProductRow> {
  const d = prepared.description.body;
  const ciphertextHash = prepared.product.body.ciphertextHash;
  const [row] = await tx.query<ProductRow>(
    `INSERT INTO merchant_products (ciphertext_hash, product_id, current, title, description, price, amount, content_type,
       content_hash, size, description_hash, k2_sealed, iv, ciphertext, signed_product, signed_description, created_at)
     VALUES ($1, $2, true, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb, $15::text::jsonb, $16)
     RETURNING ${COLUMNS}`,
    [
      ciphertextHash,
      input.productId,
      d.title,
      d.description,
      d.price,
      amount,
      d.contentType,
      d.contentHash,
      input.content.length,
      prepared.descriptionHash,
      // K2 sealed under the shop's data key, bound to this version (its ciphertext hash).
      await sealKeys.seal(prepared.k2, { column: K2_COLUMN, rowId: ciphertextHash }),
      prepared.product.body.iv,
      Buffer.from(prepared.ciphertext),
      JSON.stringify(prepared.product),
      JSON.stringify(prepared.description),
      now,
    ],
  );
  return row!;
}
