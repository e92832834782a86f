import { runSigningBench } from '@obol/protocol/bench/signingBench';

export async function run(ms: number) {
  const version = /Chrome\/([0-9.]+)/.exec(navigator.userAgent)?.[1] ?? navigator.userAgent;
  return { version, rows: await runSigningBench(crypto, ms) };
}
