// Browser-clean measurement of signing speed, run by Node (signing.bench.ts) and inside
// Chromium (e2e/bench/browserSigning.bench.ts) so both runtimes are measured by the same code.
import { KeyRing, generateSigningKeyPair, keyHandle } from '../src/keys.ts';
import { signMessage, verifyMessage } from '../src/signed.ts';
import type { WebCrypto } from '../src/webcrypto.ts';

export interface BenchRow {
  what: string;
  opsPerSec: number;
}

async function rate(ms: number, batch: number, op: () => Promise<unknown>): Promise<number> {
  // warm up
  await Promise.all(Array.from({ length: batch }, op));
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    await Promise.all(Array.from({ length: batch }, op));
    n += batch;
  }
  return Math.round(n / ((performance.now() - start) / 1000));
}

export async function runSigningBench(crypto: WebCrypto, ms = 1000): Promise<BenchRow[]> {
  const data = new TextEncoder().encode(JSON.stringify({ transactionId: 't-AAAAAAAAAAAAAAAAAAAAAA', n: 1, price: 'EUR:0.03', pad: 'x'.repeat(150) }));
  const rows: BenchRow[] = [];
  const algs = [
    ['ECDSA P-256', { name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }],
    ['Ed25519', { name: 'Ed25519' }, { name: 'Ed25519' }],
  ] as const;
  for (const [label, gen, sign] of algs) {
    let pair: CryptoKeyPair;
    try {
      pair = (await crypto.subtle.generateKey(gen, false, ['sign', 'verify'])) as CryptoKeyPair;
    } catch {
      rows.push({ what: `${label}: not supported`, opsPerSec: 0 });
      continue;
    }
    const sig = await crypto.subtle.sign(sign, pair.privateKey, data);
    rows.push({ what: `${label} sign (one at a time)`, opsPerSec: await rate(ms, 1, () => crypto.subtle.sign(sign, pair.privateKey, data)) });
    rows.push({ what: `${label} verify (one at a time)`, opsPerSec: await rate(ms, 1, () => crypto.subtle.verify(sign, pair.publicKey, sig, data)) });
    rows.push({ what: `${label} verify (64 concurrent)`, opsPerSec: await rate(ms, 64, () => crypto.subtle.verify(sign, pair.publicKey, sig, data)) });
  }
  // The whole path of a received message: canonical JSON, signature, schema.
  const key = await keyHandle(await generateSigningKeyPair(false, crypto), crypto);
  const ring = new KeyRing(crypto);
  await ring.addSpki(key.publicKeySpki);
  const order = { transactionId: 't-AAAAAAAAAAAAAAAAAAAAAA', n: 1, productId: 'article-1', price: 'EUR:0.03', origin: 'https://news.example',
    listSalt: 'c2FsdHNhbHRzYWx0c2FsdA', time: 1 };
  const signed = await signMessage('wallet.order', order, key.signer);
  rows.push({ what: 'wallet.order signMessage (ES256, 64 concurrent)', opsPerSec: await rate(ms, 64, () => signMessage('wallet.order', order, key.signer)) });
  rows.push({ what: 'wallet.order verifyMessage (ES256, 64 concurrent)', opsPerSec: await rate(ms, 64, () => verifyMessage(signed, 'wallet.order', ring.resolve, crypto)) });
  return rows;
}

export function printRows(title: string, rows: BenchRow[]): void {
  console.log(`\n${title}`);
  for (const r of rows) console.log(`  ${r.what.padEnd(52)} ${r.opsPerSec.toLocaleString('en-US').padStart(9)} ops/s`);
}
