// Prints the size of the browser bundle of protocol/ (raw and gzip).
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

for (const f of readdirSync(new URL('../dist/', import.meta.url))) {
  if (!f.endsWith('.js')) continue;
  const buf = readFileSync(new URL(`../dist/${f}`, import.meta.url));
  console.log(`protocol/dist/${f}: ${(buf.length / 1024).toFixed(1)} KB, ${(gzipSync(buf).length / 1024).toFixed(1)} KB gzip`);
}
