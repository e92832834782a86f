-- FIG 4, secure delivery of digital goods: the merchant's prepared catalogue. A product is
-- encrypted ONCE, when it is added, with its own random K2 (AES-256-GCM), and its two messages are
-- signed ONCE with the merchant key: merchant.product (over the ciphertext's hash, with the product
-- id) and merchant.description (what the shopper is promised, with the plaintext's hash). Per
-- purchase the merchant only wraps K2 with the shopper's K1 and signs that (merchant.key).
--
-- One row per prepared version. Adding a product again with other content or terms makes a new
-- version and retires the old one (current = false); old versions stay, because an order delivered
-- from one may still be accepted, and its key must open what was delivered.
CREATE TABLE merchant_products (
  -- SHA-256 (base64url) of the ciphertext: what the signed merchant.product names, what an order
  -- row records as delivered and what the wallet's accept must name.
  ciphertext_hash  text    PRIMARY KEY,
  product_id       text    NOT NULL,
  current          boolean NOT NULL,
  title            text    NOT NULL,
  description      text    NOT NULL,
  -- The price as signed (canonical wire form, the merchant's currency) and in minor units.
  price            text    NOT NULL,
  amount           bigint  NOT NULL CHECK (amount >= 0),
  content_type     text    NOT NULL,
  -- SHA-256 of the plaintext (in the signed description) and its size in bytes.
  content_hash     text    NOT NULL,
  size             integer NOT NULL CHECK (size >= 0),
  -- SHA-256 of the canonical description body: what the accept names.
  description_hash text    NOT NULL,
  -- K2, base64url. The merchant's secret: it leaves only wrapped with a shopper's K1.
  k2               text    NOT NULL,
  iv               text    NOT NULL,
  ciphertext       bytea   NOT NULL,
  signed_product     jsonb NOT NULL,
  signed_description jsonb NOT NULL,
  created_at       bigint  NOT NULL
);

-- At most one current version per product id; the catalogue lists and sells the current ones.
CREATE UNIQUE INDEX merchant_products_current ON merchant_products (product_id) WHERE current;

-- What each order delivered and what its accept got back.
ALTER TABLE merchant_orders ADD COLUMN description_hash text;
-- sign_M([K2]^K1) for this purchase, made when the accept is recorded and answered to every replay.
ALTER TABLE merchant_orders ADD COLUMN key_msg jsonb;
