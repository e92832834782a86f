// `npm run bench` (protocol): signing speed in Node with the built-in WebCrypto and with the
// @peculiar/webcrypto fallback. The same code runs in Chromium from e2e/bench.
import { Crypto as PeculiarCrypto } from '@peculiar/webcrypto';
import type { WebCrypto } from '../src/webcrypto.ts';
import { printRows, runSigningBench } from './signingBench.ts';

const ms = Number(process.env.BENCH_MS ?? 1000);
printRows(`Node ${process.version}, crypto.subtle`, await runSigningBench(globalThis.crypto, ms));
printRows('Node, @peculiar/webcrypto (fallback provider)', await runSigningBench(new PeculiarCrypto() as unknown as WebCrypto, ms));
